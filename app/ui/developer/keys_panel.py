"""API keys for the local server: generate, copy, remove, and "require a key here too".

Keys are secrets: the list shows each one shortened, the clipboard gets it whole, and they are
stored in the OS keyring (or a 0600 file) by `app.services.api_keys` on the page's worker,
never in the settings table.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.services.api_keys import generate_key, load_keys, save_keys
from app.ui.plain_text import plain_label
from app.ui.workers import TaskRunner

_WHERE = {"keyring": "Stored in the system keyring.", "file": "Stored in a file only you can read."}


def masked(key: str) -> str:
    return f"{key[:11]}…{key[-4:]}" if len(key) > 20 else "…" + key[-4:]


class KeysPanel(QGroupBox):
    keysChanged = Signal()  # the key list changed (after it was saved)
    loaded = Signal()  # the stored keys have been read
    requireToggled = Signal(bool)

    def __init__(self, tasks: TaskRunner, data_root: Path | None,
                 parent: QWidget | None = None) -> None:
        super().__init__("API keys", parent)
        self._tasks = tasks
        self._root = data_root
        self.keys: list[str] = []
        self.is_loaded = False
        self.list = QListWidget()
        self.list.setObjectName("apiKeys")
        self.list.setMaximumHeight(72)
        self.generate_button = QPushButton("Generate key")
        self.copy_button = QPushButton("Copy")
        self.remove_button = QPushButton("Remove")
        for button in (self.generate_button, self.copy_button, self.remove_button):
            button.setEnabled(False)
        self.require_box = QCheckBox("Require a key on this computer too")
        self.require_box.setToolTip("Without it, programs on this computer need no key; on the "
                                    "local network a key is always required.")
        self.where_label = plain_label("Reading keys…")  # may show an OS error's text
        self.where_label.setStyleSheet("color: palette(placeholder-text);")
        self.where_label.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        layout.addWidget(self.require_box)
        layout.addWidget(self.where_label)

        self.generate_button.clicked.connect(self.generate)
        self.copy_button.clicked.connect(self.copy_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.require_box.toggled.connect(self.requireToggled)
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self._tasks.start(load_keys, data_root, on_returned=self._on_loaded,
                          on_errored=self._on_load_failed)

    # -- keys ----------------------------------------------------------------------------------
    def generate(self) -> str:
        key = generate_key()
        self.keys.append(key)
        self._show_keys(select=len(self.keys) - 1)
        self._save()
        return key

    def selected_key(self) -> str | None:
        row = self.list.currentRow()
        return self.keys[row] if 0 <= row < len(self.keys) else None

    def copy_selected(self) -> None:
        key = self.selected_key()
        if key is not None:
            QGuiApplication.clipboard().setText(key)
            self.where_label.setText("Key copied to the clipboard.")

    def remove_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.keys):
            del self.keys[row]
            self._show_keys(select=min(row, len(self.keys) - 1))
            self._save()

    def _save(self) -> None:
        self._tasks.start(save_keys, list(self.keys), self._root,
                          on_returned=self._on_saved, on_errored=self._on_save_failed)
        self.keysChanged.emit()

    # -- view ----------------------------------------------------------------------------------
    def _show_keys(self, select: int = -1) -> None:
        self.list.clear()
        for key in self.keys:
            item = QListWidgetItem(masked(key), self.list)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, "API key ending " + key[-4:])
        if not self.keys:
            placeholder = QListWidgetItem("No keys yet", self.list)
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
        elif select >= 0:
            self.list.setCurrentRow(select)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.generate_button.setEnabled(self.is_loaded)
        has = self.selected_key() is not None
        self.copy_button.setEnabled(has)
        self.remove_button.setEnabled(has)

    def _on_loaded(self, keys: list[str]) -> None:
        self.keys = keys
        self.is_loaded = True
        self.where_label.setText("Programs send a key as “Authorization: Bearer KEY” or "
                                 "“x-api-key: KEY”.")
        self._show_keys(select=0 if keys else -1)
        self.loaded.emit()

    def _on_load_failed(self, exc: BaseException) -> None:
        # Keys stay unloaded: generating one now would save over the keys that could not be read.
        self.keys, self.is_loaded = [], False
        self._show_keys(select=-1)
        self.where_label.setText(f"Could not read the stored keys: {exc}")
        self.loaded.emit()

    def _on_saved(self, where: str) -> None:
        self.where_label.setText(_WHERE.get(where, ""))

    def _on_save_failed(self, exc: BaseException) -> None:
        self.where_label.setText(f"Could not save the keys: {exc}")
