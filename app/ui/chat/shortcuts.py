"""The chat's keyboard shortcuts, window-wide: Ctrl+N new chat, Ctrl+K / Ctrl+F search chats,
Esc stops a reply, Ctrl+Shift+C copies the last reply (without reasoning), and Up in an empty
composer edits the last message you sent."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QWidget

from app.ui.chat.message_view import answer_text
from app.ui.chat.page import ChatPage


class ChatShortcuts(QObject):
    def __init__(self, window: QWidget, page: ChatPage, show_chat: Callable[[], None]) -> None:
        """``show_chat`` brings the Chat page forward (the shortcuts work from any page)."""
        super().__init__(window)
        self._page = page
        self._show_chat = show_chat
        self.new_chat = self._action(window, "New chat", [QKeySequence.StandardKey.New],
                                     self._on_new_chat)
        self.search = self._action(window, "Search chats",
                                   [QKeySequence("Ctrl+K"), QKeySequence.StandardKey.Find],
                                   self._on_search)
        self.stop = self._action(window, "Stop the reply", [QKeySequence(Qt.Key.Key_Escape)],
                                 page.controller.stop)
        self.stop.setEnabled(False)  # Esc means nothing else here but must reach dialogs
        page.controller.busyChanged.connect(self.stop.setEnabled)
        self.copy_last = self._action(window, "Copy the last reply",
                                      [QKeySequence("Ctrl+Shift+C")], self.copy_last_reply)
        page.composer.input.recallRequested.connect(self.edit_last_message)

    @staticmethod
    def _action(window: QWidget, text: str, keys: list[QKeySequence | QKeySequence.StandardKey],
                slot: Callable[[], object]) -> QAction:
        action = QAction(text, window)
        action.setShortcuts([QKeySequence(key) for key in keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        window.addAction(action)
        return action

    def _on_new_chat(self) -> None:
        self._show_chat()
        self._page.new_chat()

    def _on_search(self) -> None:
        self._show_chat()
        box = self._page.chat_list.search_box
        box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        box.selectAll()

    def copy_last_reply(self) -> bool:
        """The newest reply's answer to the clipboard; False when the chat has none."""
        for record in reversed(self._page.messages.records()):
            if record.role == "assistant" and record.tool_turn is None:
                QGuiApplication.clipboard().setText(answer_text(record))
                return True
        return False

    def edit_last_message(self) -> bool:
        """Put the last message you sent back in the composer to edit (not while replying)."""
        page = self._page
        if page.controller.busy:
            return False
        for record in reversed(page.messages.records()):
            if record.role == "user":
                page.composer.begin_edit(record.id, record.content)
                return True
        return False
