"""Where the user writes: Enter sends, Shift+Enter breaks the line, Send turns into Stop."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class _Input(QPlainTextEdit):
    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    sendRequested = Signal(str)
    editRequested = Signal(int, str)  # message id being replaced, new text
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._busy = False
        self._editing: int | None = None
        self.input = _Input(self)
        self.input.setPlaceholderText("Send a message (Enter to send, Shift+Enter for a new line)")
        self.input.setMaximumHeight(90)
        self.input.submitted.connect(self.submit)
        self.button = QPushButton("Send", self)
        self.button.clicked.connect(self._on_button)
        # Its menu's actions are the page's (documents now): the composer only offers them.
        self.attach_button = QToolButton(self)
        self.attach_button.setText("Attach")
        self.attach_button.setToolTip("Add documents for this chat to answer from")
        self.attach_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.attach_button.setMenu(QMenu(self.attach_button))

        self.edit_banner = QLabel("Editing a message: sending replaces it and every later one.")
        self.cancel_edit_button = QPushButton("Cancel edit", self)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        banner = QHBoxLayout()
        banner.addWidget(self.edit_banner, 1)
        banner.addWidget(self.cancel_edit_button)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.attach_button)
        buttons.addWidget(self.button)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(banner)
        layout.addLayout(row)
        self._show_banner(False)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def editing_id(self) -> int | None:
        return self._editing

    def text(self) -> str:
        return self.input.toPlainText()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.button.setText("Stop" if busy else "Send")
        self.button.setToolTip("Stop the reply, keeping what was written" if busy else "")

    def begin_edit(self, message_id: int, text: str) -> None:
        self._editing = message_id
        self.input.setPlainText(text)
        self.input.setFocus()
        self._show_banner(True)

    def cancel_edit(self) -> None:
        """Leave edit mode, dropping the edited text (a plain draft is left alone)."""
        if self._editing is None:
            return
        self._editing = None
        self.input.clear()
        self._show_banner(False)

    def submit(self) -> None:
        """Send (or resend an edit); ignored while a reply streams or when there is no text."""
        text = self.text()
        if self._busy or not text.strip():
            return
        if self._editing is not None:
            self.editRequested.emit(self._editing, text)
        else:
            self.sendRequested.emit(text)

    def accept_sent(self) -> None:
        """The page took the text: clear the box and leave edit mode."""
        self._editing = None
        self.input.clear()
        self._show_banner(False)

    def _on_button(self) -> None:
        if self._busy:
            self.stopRequested.emit()
        else:
            self.submit()

    def _show_banner(self, visible: bool) -> None:
        self.edit_banner.setVisible(visible)
        self.cancel_edit_button.setVisible(visible)
