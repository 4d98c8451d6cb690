"""Left panel: saved chats (newest first), New / Rename / Delete, and full-text search."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProxyStyle,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.models.store import Store
from app.ui.plain_text import escaped_rich

SEARCH_DELAY_MS = 200  # wait for a pause in typing before querying
SEARCH_LIMIT = 50
ChatIdRole = Qt.ItemDataRole.UserRole + 1
MessageIdRole = Qt.ItemDataRole.UserRole + 2


class _ActivateOnSingleClick(QProxyStyle):
    """Makes a list emit `itemActivated` once for a click, a double-click or Enter, so one signal
    serves mouse and keyboard (listening to itemClicked too would open a hit twice)."""

    def styleHint(self, hint, option=None, widget=None, returnData=None):  # noqa: N802, N803
        if hint == QStyle.StyleHint.SH_ItemView_ActivateItemOnSingleClick:
            return 1
        return super().styleHint(hint, option, widget, returnData)


class ChatList(QWidget):
    chatActivated = Signal(int)
    hitActivated = Signal(int, int)  # chat id, message id
    newChatRequested = Signal()
    chatDeleted = Signal(int)
    chatRenamed = Signal(int, str)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._filling = False
        self.search_box = QLineEdit(self)
        self.search_box.setPlaceholderText("Search all chats")
        self.search_box.setClearButtonEnabled(True)
        self.chats = QListWidget(self)
        self.hits = QListWidget(self)
        for listing in (self.chats, self.hits):
            # Long titles are elided rather than scrolled sideways.
            listing.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            listing.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.hits.setWordWrap(True)
        # Parented to this panel, created after the list: freed only after the list is.
        self._hits_style = _ActivateOnSingleClick()
        self._hits_style.setParent(self)
        self.hits.setStyle(self._hits_style)
        self.hits.hide()
        self.new_button = QPushButton("New chat", self)
        self.rename_button = QPushButton("Rename", self)
        self.delete_button = QPushButton("Delete", self)

        buttons = QHBoxLayout()
        for button in (self.new_button, self.rename_button, self.delete_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search_box)
        layout.addWidget(self.chats, 1)
        layout.addWidget(self.hits, 1)
        layout.addLayout(buttons)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.run_search)
        self.search_box.textChanged.connect(lambda _text: self._search_timer.start())
        self.chats.currentItemChanged.connect(self._on_current_changed)
        self.chats.itemChanged.connect(self._on_item_renamed)
        self.hits.itemActivated.connect(self._on_hit)
        self.new_button.clicked.connect(self.newChatRequested)
        self.rename_button.clicked.connect(self.start_rename)
        self.delete_button.clicked.connect(self.delete_current)
        self._update_buttons()

    # -- chats ---------------------------------------------------------------------------------
    def refresh(self, select_id: int | None = None) -> None:
        """Reload the list from the Store, keeping (or moving) the selection quietly."""
        if select_id is None:
            select_id = self.current_chat_id()
        self._filling = True
        try:
            self.chats.clear()
            for chat in self._store.list_chats():
                item = QListWidgetItem(chat.title)
                item.setData(ChatIdRole, chat.id)
                item.setToolTip(chat.title)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.chats.addItem(item)
                if chat.id == select_id:
                    self.chats.setCurrentItem(item)
        finally:
            self._filling = False
        self._update_buttons()

    def move_to_top(self, chat_id: int) -> None:
        """A chat was just used (a message sent): show its current title first in the list and
        select it, without reloading the others. Reloads only if the list does not show it."""
        item = self.item_for(chat_id)
        chat = self._store.get_chat(chat_id)
        if item is None or chat is None:
            self.refresh(select_id=chat_id)
            return
        self._filling = True
        try:
            if item.text() != chat.title:
                item.setText(chat.title)
                item.setToolTip(chat.title)
            row = self.chats.row(item)
            if row != 0:
                self.chats.insertItem(0, self.chats.takeItem(row))
            self.chats.setCurrentItem(item)
        finally:
            self._filling = False
        self._update_buttons()

    def current_chat_id(self) -> int | None:
        item = self.chats.currentItem()
        return int(item.data(ChatIdRole)) if item is not None else None

    def chat_ids(self) -> list[int]:
        return [int(self.chats.item(i).data(ChatIdRole)) for i in range(self.chats.count())]

    def item_for(self, chat_id: int) -> QListWidgetItem | None:
        for i in range(self.chats.count()):
            if self.chats.item(i).data(ChatIdRole) == chat_id:
                return self.chats.item(i)
        return None

    def start_rename(self) -> None:
        item = self.chats.currentItem()
        if item is not None:
            self.chats.editItem(item)

    def delete_current(self) -> None:
        chat_id = self.current_chat_id()
        if chat_id is None:
            return
        title = self.chats.currentItem().text()
        count = self._store.count_messages(chat_id)
        answer = QMessageBox.question(
            self,
            "Delete chat",
            escaped_rich(f"Delete “{title}” and its {count} messages? This cannot be undone."),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._store.delete_chat(chat_id)
        self.refresh(select_id=-1)
        self.chatDeleted.emit(chat_id)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        self._update_buttons()
        if current is not None and not self._filling:
            self.chatActivated.emit(int(current.data(ChatIdRole)))

    def _on_item_renamed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        chat_id = int(item.data(ChatIdRole))
        title = item.text().strip()
        if not title:
            # An empty title would leave an invisible row; put the old one back.
            old = self._store.get_chat(chat_id)
            self._filling = True
            item.setText(old.title if old else "Untitled")
            self._filling = False
            return
        self._store.rename_chat(chat_id, title)
        self.chatRenamed.emit(chat_id, title)

    def _update_buttons(self) -> None:
        has_chat = self.chats.currentItem() is not None
        self.rename_button.setEnabled(has_chat)
        self.delete_button.setEnabled(has_chat)

    # -- search --------------------------------------------------------------------------------
    def run_search(self) -> None:
        """Query the full-text index now (one indexed FTS query with a LIMIT, so it is quick)."""
        self._search_timer.stop()
        query = self.search_box.text().strip()
        self.hits.clear()
        if not query:
            self.hits.hide()
            self.chats.show()
            return
        results = self._store.search_messages(query, SEARCH_LIMIT, marks=("«", "»"))
        for hit in results:
            item = QListWidgetItem(f"{hit.chat_title}\n{hit.snippet}")
            item.setData(ChatIdRole, hit.chat_id)
            item.setData(MessageIdRole, hit.message_id)
            self.hits.addItem(item)
        if not results:
            empty = QListWidgetItem("No messages match.")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.hits.addItem(empty)
        self.chats.hide()
        self.hits.show()

    def _on_hit(self, item: QListWidgetItem) -> None:
        chat_id = item.data(ChatIdRole)
        if chat_id is not None:
            self.hitActivated.emit(int(chat_id), int(item.data(MessageIdRole)))
