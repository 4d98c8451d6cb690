"""The chat settings' tools section: the per-chat "Tools" switch, the tools on offer (each with
its source), the MCP servers of mcp.json and their state, and the folders read_file may read.

Tool names, descriptions and server errors come from outside: list items and labels are plain
text.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.models.records import ChatRecord
from app.models.store import Store
from app.services.tool_loop import MAX_STEPS_KEY, max_steps, source_label
from app.services.tools import GrantedFolders, McpConfigError
from app.ui.chat.tool_sources import ToolSources
from app.ui.plain_text import plain_label


class ToolsPanel(QWidget):
    toolsToggled = Signal(bool)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._chat_id: int | None = None
        self._sources: ToolSources | None = None
        self._folders = GrantedFolders(store)
        self.switch = QCheckBox("Tools (every call asks you first)", self)
        self.max_steps = QSpinBox(self)  # for every chat: a setting, not per chat
        self.max_steps.setRange(1, 100)
        self.max_steps.setValue(max_steps(store))
        self.max_steps.setPrefix("At most ")
        self.max_steps.setSuffix(" tool steps per message")
        self.tool_list = QListWidget(self)
        self.tool_list.setMinimumHeight(80)
        self.tool_list.setMaximumHeight(120)
        self.servers = QListWidget(self)
        self.servers.setMinimumHeight(44)
        self.servers.setMaximumHeight(70)
        self.message = plain_label(parent=self)
        self.message.setWordWrap(True)
        self.structured_note = plain_label(
            "Not offered while structured output is on: a reply held to a schema cannot call "
            "tools.", parent=self)
        self.structured_note.setWordWrap(True)
        self.structured_note.setStyleSheet("color: palette(placeholder-text);")
        self.structured_note.hide()
        self.import_button = QPushButton("Import mcp.json…", self)
        self.folders = QListWidget(self)
        self.folders.setMaximumHeight(60)
        self.grant_button = QPushButton("Grant folder…", self)
        self.revoke_button = QPushButton("Remove", self)
        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(self.grant_button)
        folder_buttons.addWidget(self.revoke_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.switch)
        layout.addWidget(self.structured_note)
        layout.addWidget(self.max_steps)
        layout.addWidget(QLabel("Available tools", self))
        layout.addWidget(self.tool_list)
        layout.addWidget(QLabel("MCP servers", self))
        layout.addWidget(self.servers)
        layout.addWidget(self.import_button)
        layout.addWidget(self.message)
        layout.addWidget(QLabel("Folders read_file may read (read-only)", self))
        layout.addWidget(self.folders)
        layout.addLayout(folder_buttons)
        self.switch.toggled.connect(self._on_switch)
        self.max_steps.valueChanged.connect(lambda n: store.set_setting(MAX_STEPS_KEY, n))
        self.import_button.clicked.connect(self._import_dialog)
        self.grant_button.clicked.connect(self._grant_dialog)
        self.revoke_button.clicked.connect(self._revoke_selected)
        self._show_folders()

    # -- public --------------------------------------------------------------------------------
    def set_sources(self, sources: ToolSources) -> None:
        self._sources = sources
        sources.changed.connect(self.refresh)
        self.refresh()

    def set_chat(self, chat: ChatRecord | None) -> None:
        """Show a chat's switch without saving anything."""
        self._chat_id = chat.id if chat else None
        self.switch.blockSignals(True)
        self.switch.setChecked(bool(chat and chat.tools_enabled))
        self.switch.blockSignals(False)
        if chat is not None and chat.tools_enabled and self._sources is not None:
            self._sources.ensure_connected()

    def set_structured(self, on: bool) -> None:
        """Structured output is on for this chat: its replies are offered no tools, and the
        panel says so."""
        self.structured_note.setVisible(on)

    def refresh(self) -> None:
        sources = self._sources
        if sources is None:
            return
        self.tool_list.clear()
        for tool in sources.box.tools:
            self.tool_list.addItem(f"{tool.name} — {source_label(tool.source)}")
        self.servers.clear()
        for name, state in sources.server_states():
            self.servers.addItem(f"{name}: {state}")
            item = self.servers.item(self.servers.count() - 1)
            item.setToolTip(item.text())  # an error is often longer than the panel is wide
        if sources.connecting:
            self.servers.addItem("connecting…")
        elif not self.servers.count():
            self.servers.addItem("none yet: import an mcp.json")
        problems = [p for p in (sources.config_error, *sources.box.problems) if p]
        if problems:
            self.message.setText("\n".join(problems))

    def import_file(self, path: str) -> bool:
        """Import an mcp.json and connect its servers; False (and the reason shown) if bad."""
        if self._sources is None:
            return False
        try:
            self._sources.import_config(path)
        except (McpConfigError, OSError) as exc:
            self.message.setText(f"Could not import {path}: {exc}")
            return False
        self.message.setText(f"Imported {path}.")
        return True

    def grant_folder(self, path: str) -> None:
        try:
            self._folders.grant(path)
        except (OSError, ValueError) as exc:
            self.message.setText(f"Could not grant {path}: {exc}")
        self._show_folders()

    # -- private -------------------------------------------------------------------------------
    def _on_switch(self, on: bool) -> None:
        if self._chat_id is None:
            return
        self._store.update_chat(self._chat_id, tools_enabled=on)
        if on and self._sources is not None:
            self._sources.ensure_connected()
        self.toolsToggled.emit(on)

    def _show_folders(self) -> None:
        self.folders.clear()
        for folder in self._folders.list():
            self.folders.addItem(str(folder))

    def _import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import mcp.json", "", "JSON (*.json)")
        if path:
            self.import_file(path)

    def _grant_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Grant a folder to read_file")
        if path:
            self.grant_folder(path)

    def _revoke_selected(self) -> None:
        item = self.folders.currentItem()
        if item is not None:
            self._folders.revoke(item.text())
            self._show_folders()
