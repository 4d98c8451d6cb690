"""The chat's structured output: a switch, a schema editor, and what is wrong with the schema.

The schema is checked as the user types (JSON syntax with line and column, the JSON Schema
meta-schema, and the keywords the grammar converter cannot enforce: see
app.services.response_schema), a short pause after the last key so typing stays smooth, and off
the GUI thread, since a pasted schema may be large. A check answered after newer text was typed
is ignored. The switch can be turned on only while the schema is usable; it can always be
turned off. Everything shown is plain text (the schema may come from an imported chat).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QCheckBox, QPlainTextEdit, QVBoxLayout, QWidget

from app.services.response_schema import EMPTY_MESSAGE, SchemaCheck, check_schema_text
from app.ui.plain_text import plain_label
from app.ui.workers import TaskRunner

CHECK_DELAY_MS = 300  # after the last key press
PLACEHOLDER = '{\n  "type": "object",\n  "properties": {"answer": {"type": "string"}},\n' \
              '  "required": ["answer"]\n}'
_ERROR_STYLE = "color: #b00020"
_OK_STYLE = "color: #2e7d32"


class SchemaEditor(QWidget):
    # The user changed the text (saved after a pause) or the switch (saved at once).
    textEdited = Signal()
    switchToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.switch = QCheckBox("Structured output (JSON)", self)
        self.switch.setToolTip("Constrain replies to JSON that follows the schema below")
        self.editor = QPlainTextEdit(self)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setPlaceholderText(PLACEHOLDER)
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.editor.setTabChangesFocus(True)
        self.message = plain_label(parent=self)
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.switch)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.message)

        self._filling = False
        self._checked_text: str | None = None  # the text the last answered check was for
        self._check: SchemaCheck = SchemaCheck(None, EMPTY_MESSAGE)
        self._asked = 0  # numbers the checks, so a late answer for older text is dropped
        self._tasks = TaskRunner(self, max_threads=1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CHECK_DELAY_MS)
        self._timer.timeout.connect(self._start_check)
        self.editor.textChanged.connect(self._on_text_changed)
        self.switch.toggled.connect(self._on_toggled)
        self._show(self._check)

    # -- public --------------------------------------------------------------------------------
    def set_schema(self, text: str | None, on: bool) -> None:
        """Show a chat's schema and switch (nothing is saved); its check starts at once."""
        # Forget the previous chat's verdict: it must not enable the switch for this one.
        self._check, self._checked_text = SchemaCheck(None, ""), None
        self._filling = True
        try:
            self.editor.setPlainText(text or "")
            self.switch.setChecked(on)
        finally:
            self._filling = False
        self._timer.stop()
        self._show(self._check)
        self._start_check()

    def schema_text(self) -> str | None:
        """The schema as typed; None when there is none."""
        text = self.editor.toPlainText()
        return text if text.strip() else None

    def is_on(self) -> bool:
        return self.switch.isChecked()

    @property
    def check(self) -> SchemaCheck:
        """The latest answered check (of the text on screen once `checking` is False)."""
        return self._check

    @property
    def checking(self) -> bool:
        return self._timer.isActive() or self._checked_text != self.editor.toPlainText()

    # -- private -------------------------------------------------------------------------------
    def _on_text_changed(self) -> None:
        if self._filling:
            return
        self._timer.start()
        self._update_switch()
        self.textEdited.emit()

    def _on_toggled(self, on: bool) -> None:
        self._show(self._check)
        if not self._filling:
            self.switchToggled.emit(on)

    def _start_check(self) -> None:
        self._asked += 1
        asked, text = self._asked, self.editor.toPlainText()
        self._tasks.start(check_schema_text, text,
                          on_returned=lambda check: self._on_checked(asked, text, check),
                          on_errored=lambda exc: self._on_checked(
                              asked, text, SchemaCheck(None, f"Could not check the schema: {exc}")))

    def _on_checked(self, asked: int, text: str, check: SchemaCheck) -> None:
        if asked != self._asked:
            return  # newer text is being checked
        self._checked_text, self._check = text, check
        self._show(check)

    def _show(self, check: SchemaCheck) -> None:
        empty, on = self.schema_text() is None, self.switch.isChecked()
        text = check.message  # empty: not checked yet
        if text and check.ok:
            text += " Replies follow it." if on else " Switch structured output on to use it."
        elif text and on:
            text += " Until it is fixed, replies in this chat fail."
        self.message.setText(text)
        self.message.setStyleSheet(
            _OK_STYLE if check.ok else ("" if empty and not on else _ERROR_STYLE))
        self._update_switch()

    def _update_switch(self) -> None:
        # Off is always allowed; on only once the text on screen is known to be usable.
        usable = self._check.ok and not self.checking
        self.switch.setEnabled(usable or self.switch.isChecked())
