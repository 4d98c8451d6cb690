"""The "Presets" button beside the chat's preset list: save the current system prompt and
sampling as a preset, rename, delete, duplicate (how a built-in is edited: built-ins are
read-only), and import or export presets as JSON (app.models.preset_files).

Names come from the user and from files, so every message that shows one is plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QMenu,
    QMessageBox,
    QToolButton,
    QWidget,
)

from app.engine.types import Sampling
from app.models.preset_files import (
    PresetData,
    PresetFileError,
    check_name,
    read_presets_file,
    write_presets_file,
)
from app.models.records import PresetRecord
from app.models.store import Store

JSON_FILTER = "Presets (*.json);;All files (*)"
EXPORT_NAME = "hearth-presets.json"
MAX_LISTED = 5  # names listed in the import's replace question


def tell(parent: QWidget, title: str, text: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.exec()


def ask(parent: QWidget, title: str, text: str, yes: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.button(QMessageBox.StandardButton.Yes).setText(yes)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


class PresetMenu(QToolButton):
    """Acts on the preset selected in the panel (``current``) and the chat's settings as shown
    (``values``); after a change, ``changed`` names the preset to select ("" for none) and
    whether to apply it to the chat."""

    changed = Signal(str, bool)

    def __init__(self, store: Store, current: Callable[[], PresetRecord | None],
                 values: Callable[[], tuple[str, Sampling]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._current = current
        self._values = values
        self.setText("Presets")
        self.setToolTip("Save, rename, delete, import and export presets")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        self.save_action = menu.addAction("Save as preset…", self.save_as)
        self.duplicate_action = menu.addAction("Duplicate and edit…", self.duplicate)
        self.rename_action = menu.addAction("Rename…", self.rename)
        self.delete_action = menu.addAction("Delete", self.delete)
        menu.addSeparator()
        self.import_action = menu.addAction("Import…", self.import_file)
        self.export_action = menu.addAction("Export…", self.export_file)
        menu.aboutToShow.connect(self.update_actions)
        self.setMenu(menu)
        self.update_actions()

    def update_actions(self) -> None:
        preset = self._current()
        user = preset is not None and not preset.builtin
        self.rename_action.setEnabled(user)
        self.delete_action.setEnabled(user)
        self.duplicate_action.setEnabled(preset is not None)
        why = "" if user else "Built-in presets are read-only: duplicate one to edit it"
        self.rename_action.setToolTip(why)
        self.delete_action.setToolTip(why)
        self.export_action.setEnabled(any(not p.builtin for p in self._store.list_presets()))

    # -- actions ---------------------------------------------------------------------------------
    def save_as(self) -> None:
        preset = self._current()
        default = preset.name if preset is not None and not preset.builtin else ""
        name = self._ask_name("Save as preset", default)
        if name is None or not self._may_save(name):
            return
        prompt, sampling = self._values()
        self._store.save_user_presets([(name, prompt, sampling)])
        self.changed.emit(name, False)

    def duplicate(self) -> None:
        preset = self._current()
        if preset is None:
            return
        name = self._ask_name("Duplicate preset", self._free_name(f"{preset.name} (copy)"))
        if name is None or not self._may_save(name):
            return
        self._store.save_user_presets([(name, preset.system_prompt, preset.sampling)])
        self.changed.emit(name, True)

    def rename(self) -> None:
        preset = self._current()
        if preset is None or preset.builtin:
            return
        name = self._ask_name("Rename preset", preset.name)
        if name is None or name == preset.name:
            return
        try:
            self._store.rename_preset(preset.name, name)
        except KeyError:
            tell(self, "Rename preset", "That preset no longer exists.")
            self.changed.emit("", False)
            return
        except ValueError:
            tell(self, "Rename preset",
                 f"A preset named “{name}” already exists. Choose another name.")
            return
        self.changed.emit(name, False)

    def delete(self) -> None:
        preset = self._current()
        if preset is None or preset.builtin:
            return
        if not ask(self, "Delete preset", f"Delete the preset “{preset.name}”? The chat keeps "
                   "its system prompt and sampling.", "Delete"):
            return
        self._store.delete_preset(preset.name)
        self.changed.emit("", False)

    def import_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import presets", "", JSON_FILTER)
        if not path:
            return
        try:
            presets = read_presets_file(Path(path))
        except PresetFileError as exc:
            tell(self, "Import presets", f"Nothing was imported. {exc}")
            return
        existing = {p.name: p for p in self._store.list_presets()}
        builtin = [p.name for p in presets if p.name in existing and existing[p.name].builtin]
        if builtin:
            tell(self, "Import presets", f"Nothing was imported. “{builtin[0]}” is the name of "
                 "a built-in preset, which cannot be replaced: rename it in the file.")
            return
        replaced = [p.name for p in presets if p.name in existing]
        if replaced and not ask(self, "Import presets", _replace_question(replaced), "Replace"):
            return
        self._store.save_user_presets([(p.name, p.system_prompt, p.sampling) for p in presets])
        self.changed.emit("", False)  # listed, not applied: the chat's settings stay

    def export_file(self) -> None:
        presets = [PresetData(p.name, p.system_prompt, p.sampling)
                   for p in self._store.list_presets() if not p.builtin]
        if not presets:
            return
        path, _filter = QFileDialog.getSaveFileName(self, "Export presets", EXPORT_NAME,
                                                    JSON_FILTER)
        if not path:
            return
        try:
            write_presets_file(Path(path), presets)
        except OSError as exc:
            tell(self, "Export presets", f"The presets could not be written: {exc.strerror}.")

    # -- helpers ---------------------------------------------------------------------------------
    def _ask_name(self, title: str, default: str) -> str | None:
        """A checked name from the user, or None when they cancel or give an unusable one."""
        text, ok = QInputDialog.getText(self, title, "Preset name:", QLineEdit.EchoMode.Normal,
                                        default)
        if not ok:
            return None
        try:
            return check_name(text)
        except PresetFileError as exc:
            tell(self, title, f"That name cannot be used: {exc}.")
            return None

    def _may_save(self, name: str) -> bool:
        """False for a built-in preset's name; for a user preset's, the user's answer."""
        existing = next((p for p in self._store.list_presets() if p.name == name), None)
        if existing is None:
            return True
        if existing.builtin:
            tell(self, "Presets", f"“{name}” is a built-in preset and cannot be replaced. "
                 "Choose another name.")
            return False
        return ask(self, "Presets", f"Replace the preset “{name}”?", "Replace")

    def _free_name(self, base: str) -> str:
        names = {p.name for p in self._store.list_presets()}
        name, number = base, 2
        while name in names:
            name, number = f"{base} {number}", number + 1
        return name


def _replace_question(names: list[str]) -> str:
    listed = "\n".join(f"• {name}" for name in names[:MAX_LISTED])
    more = f"\n…and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return (f"{len(names)} of the imported presets have the names of your own presets. "
            f"Replace them?\n\n{listed}{more}")
