"""Right panel: the chat's system prompt (with presets), sampling, overflow policy and
structured output (a switch and a JSON schema, see schema_editor.py).

Every change the user makes is saved to the chat through Store.update_chat; typing in the
system prompt is saved after a short pause (and at once by `flush`, which the page calls before
sending and the window before closing). Only user edits are written: opening and leaving a chat
writes nothing, and a sampling value the spin boxes cannot show (set by the CLI, say) is kept
unless the user changes that very field.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.types import Sampling
from app.models.records import ChatRecord, OverflowPolicy, PresetRecord
from app.models.store import Store
from app.ui.chat.preset_menu import PresetMenu
from app.ui.chat.schema_editor import SchemaEditor
from app.ui.chat.tools_panel import ToolsPanel

SAVE_DELAY_MS = 400
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed")
CUSTOM_PRESET = "Custom"
OVERFLOW_LABELS: dict[OverflowPolicy, str] = {
    "truncate_oldest": "Drop oldest turns, keep system prompt",
    "stop": "Stop and tell me",
}


def _double(minimum: float, maximum: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    return box


def _int(minimum: int, maximum: int, special: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setRange(minimum, maximum)
    if special:
        box.setSpecialValueText(special)  # shown at the minimum value
    return box


class SettingsPanel(QWidget):
    structuredChanged = Signal(bool)  # the user switched structured output on or off

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._chat_id: int | None = None
        self._filling = False
        self._presets: list[PresetRecord] = []
        self._sampling = Sampling()  # the chat's stored sampling, as loaded
        self._edited: set[str] = set()  # sampling fields the user changed since then
        self._dirty = False  # a user edit not yet saved

        self.preset_combo = QComboBox(self)
        self.preset_menu = PresetMenu(store, self.current_preset, self._shown_values, self)
        self.system_prompt = QPlainTextEdit(self)
        self.system_prompt.setPlaceholderText("System prompt (instructions for every reply)")
        self.temperature = _double(0.0, 2.0, 0.05)
        self.top_p = _double(0.0, 1.0, 0.01)
        self.top_k = _int(0, 1000, "off")
        self.min_p = _double(0.0, 1.0, 0.01)
        self.repeat_penalty = _double(0.5, 2.0, 0.01)
        # 0 (NO_LIMIT): until the model stops or the context is full; any other value is a limit.
        self.max_tokens = _int(0, 131072, "until it stops")
        self.max_tokens.setToolTip("Longest reply in tokens; at 0 the reply runs until the "
                                   "model stops or the context is full.")
        self.seed = _int(-1, 2**31 - 1, "random")
        self.overflow_combo = QComboBox(self)
        for policy, label in OVERFLOW_LABELS.items():
            self.overflow_combo.addItem(label, policy)
        self.schema_editor = SchemaEditor(self)
        self.tools_panel = ToolsPanel(store, self)  # saves its own switch (tools_enabled)

        form = QFormLayout()
        form.addRow("Temperature", self.temperature)
        form.addRow("Top P", self.top_p)
        form.addRow("Top K", self.top_k)
        form.addRow("Min P", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Seed", self.seed)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Preset"))
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset_combo, 1)
        preset_row.addWidget(self.preset_menu)
        layout.addLayout(preset_row)
        layout.addWidget(QLabel("System prompt"))
        layout.addWidget(self.system_prompt, 1)
        layout.addWidget(QLabel("Sampling"))
        layout.addLayout(form)
        layout.addWidget(QLabel("When the chat outgrows the context"))
        layout.addWidget(self.overflow_combo)
        layout.addWidget(self.schema_editor, 1)
        layout.addWidget(self.tools_panel)

        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.flush)
        self.preset_combo.currentIndexChanged.connect(self._on_preset)
        self.preset_combo.currentIndexChanged.connect(
            lambda _row: self.preset_menu.update_actions())
        self.preset_menu.changed.connect(self._on_presets_changed)
        self.system_prompt.textChanged.connect(self._on_prompt_edited)
        for name in SAMPLING_FIELDS:
            getattr(self, name).valueChanged.connect(
                lambda _value, name=name: self._on_edited(name))
        self.overflow_combo.currentIndexChanged.connect(lambda _row: self._on_edited(None))
        self.schema_editor.textEdited.connect(self._on_schema_edited)
        self.schema_editor.switchToggled.connect(self._on_switch)
        self.reload_presets()
        self.set_chat(None)

    # -- public --------------------------------------------------------------------------------
    def reload_presets(self) -> None:
        self._filling = True
        try:
            self._presets = self._store.list_presets()
            self.preset_combo.clear()
            self.preset_combo.addItem(CUSTOM_PRESET, None)
            for preset in self._presets:
                self.preset_combo.addItem(preset.name, preset.name)
        finally:
            self._filling = False

    def current_preset(self) -> PresetRecord | None:
        """The preset selected in the list (None for "Custom")."""
        name = self.preset_combo.currentData()
        return next((p for p in self._presets if p.name == name), None)

    def set_chat(self, chat: ChatRecord | None) -> None:
        """Show a chat's settings without saving anything."""
        self.flush()
        self._chat_id = chat.id if chat else None
        self.setEnabled(chat is not None)
        # With no chat open the (disabled) panel shows what a new chat starts with, not the
        # spin boxes' minimums, which read like broken settings.
        sampling = chat.sampling if chat else Sampling()
        self._sampling, self._edited, self._dirty = sampling, set(), False
        self._filling = True
        try:
            self.system_prompt.setPlainText(chat.system_prompt if chat else "")
            self._show_sampling(sampling)
            if chat is not None:
                self.overflow_combo.setCurrentIndex(
                    self.overflow_combo.findData(chat.overflow_policy))
            self.schema_editor.set_schema(chat.response_schema if chat else None,
                                          chat.structured_output if chat else False)
            self.tools_panel.set_chat(chat)
            self.tools_panel.set_structured(bool(chat and chat.structured_output))
            self._match_preset()
        finally:
            self._filling = False

    def sampling(self) -> Sampling:
        """The chat's sampling with the fields the user changed here (stop strings and values
        outside the spin boxes' ranges survive untouched)."""
        edited = {name: getattr(self, name).value() for name in SAMPLING_FIELDS
                  if name in self._edited}
        return replace(self._sampling, stop=list(self._sampling.stop), **edited)

    def overflow_policy(self) -> OverflowPolicy:
        return self.overflow_combo.currentData()

    def flush(self) -> None:
        """Save pending user edits now; without any, write nothing."""
        self._save_timer.stop()
        if self._dirty:
            self._save_now()

    # -- private -------------------------------------------------------------------------------
    def _show_sampling(self, sampling: Sampling) -> None:
        self.temperature.setValue(sampling.temperature)
        self.top_p.setValue(sampling.top_p)
        self.top_k.setValue(sampling.top_k)
        self.min_p.setValue(sampling.min_p)
        self.repeat_penalty.setValue(sampling.repeat_penalty)
        self.max_tokens.setValue(sampling.max_tokens)
        self.seed.setValue(sampling.seed)

    def _on_preset(self, row: int) -> None:
        if self._filling:
            return
        name = self.preset_combo.itemData(row)
        preset = next((p for p in self._presets if p.name == name), None)
        if preset is None:
            return
        self._filling = True
        try:
            self.system_prompt.setPlainText(preset.system_prompt)
            if preset.sampling is not None:
                self._show_sampling(preset.sampling)
                self._edited.update(SAMPLING_FIELDS)
        finally:
            self._filling = False
        self._dirty = True
        self.flush()

    def _shown_values(self) -> tuple[str, Sampling]:
        return self.system_prompt.toPlainText(), self.sampling()

    def _on_presets_changed(self, name: str, apply: bool) -> None:
        """The preset menu changed the presets: list them again and select ``name`` (applied to
        the chat when ``apply``), or the preset matching the chat when there is none."""
        self.reload_presets()
        row = self.preset_combo.findData(name) if name else -1
        if row < 0:
            self._match_preset()
        elif apply:
            self.preset_combo.setCurrentIndex(row)
            self.system_prompt.setFocus()
        else:
            filling, self._filling = self._filling, True
            self.preset_combo.setCurrentIndex(row)
            self._filling = filling
        self.preset_menu.update_actions()

    def _on_prompt_edited(self) -> None:
        if self._filling:
            return
        self._match_preset()
        self._dirty = True
        self._save_timer.start()

    def _on_schema_edited(self) -> None:
        if self._filling:
            return
        self._dirty = True
        self._save_timer.start()

    def _on_switch(self, on: bool) -> None:
        self._on_edited(None)
        self.tools_panel.set_structured(on)
        self.structuredChanged.emit(on)

    def _on_edited(self, field: str | None) -> None:
        """A sampling field (None: the overflow policy) changed; saved at once."""
        if self._filling:
            return
        if field is not None:
            self._edited.add(field)
        self._dirty = True
        self.flush()

    def _match_preset(self) -> None:
        text = self.system_prompt.toPlainText()
        match = next((p.name for p in self._presets if p.system_prompt == text), None)
        row = self.preset_combo.findData(match) if match is not None else 0
        filling, self._filling = self._filling, True  # showing the match must not re-apply it
        self.preset_combo.setCurrentIndex(max(0, row))
        self._filling = filling

    def _save_now(self) -> None:
        if self._filling or self._chat_id is None:
            return
        self._dirty = False
        self._sampling = self.sampling()
        self._store.update_chat(
            self._chat_id,
            system_prompt=self.system_prompt.toPlainText(),
            sampling=self._sampling,
            overflow_policy=self.overflow_policy(),
            response_schema=self.schema_editor.schema_text(),
            structured_output=self.schema_editor.is_on(),
        )
