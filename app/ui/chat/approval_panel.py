"""Above the composer while a tool call waits for the user: which tool, from where, what its
source says it does, the arguments, and Allow once / Always allow this tool / Deny.

Everything shown came from the model or a tool's source (an MCP server may describe its tool
in any words it likes), so it is plain text, and the description is marked as the source's.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.services.tool_loop import PendingCall
from app.services.tools.values import BUILTIN
from app.ui.chat.tool_blocks import pretty_arguments
from app.ui.plain_text import plain_label

DESCRIPTION_CHARS = 600


class ApprovalPanel(QFrame):
    decided = Signal(str)  # "allow", "always" or "deny"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("toolApproval")
        self.setStyleSheet("#toolApproval { border: 2px solid #c77700; border-radius: 6px; }")
        self.title = plain_label(parent=self)
        bold = QFont(self.title.font())
        bold.setBold(True)
        self.title.setFont(bold)
        self.source = plain_label(parent=self)
        self.description = plain_label(parent=self)
        self.description.setWordWrap(True)
        self.arguments = QPlainTextEdit(self)
        self.arguments.setReadOnly(True)
        self.arguments.setMaximumHeight(110)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.arguments.setFont(mono)
        self.allow_button = QPushButton("Allow once", self)
        self.always_button = QPushButton("Always allow this tool", self)
        self.deny_button = QPushButton("Deny", self)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.deny_button, self.always_button, self.allow_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.source)
        layout.addWidget(self.description)
        layout.addWidget(QLabel("Arguments:", self))
        layout.addWidget(self.arguments)
        layout.addLayout(buttons)
        self.allow_button.clicked.connect(lambda: self.decided.emit("allow"))
        self.always_button.clicked.connect(lambda: self.decided.emit("always"))
        self.deny_button.clicked.connect(lambda: self.decided.emit("deny"))
        self.hide()

    def ask(self, pending: PendingCall) -> None:
        """Show a call and wait for a button."""
        self.title.setText(f"The model wants to run the tool “{pending.call.name}”")
        self.source.setText(f"Source: {pending.source_label}")
        tool = pending.tool
        text = " ".join((tool.description if tool else "").split())
        if len(text) > DESCRIPTION_CHARS:
            text = text[: DESCRIPTION_CHARS - 1] + "…"
        if tool is not None and tool.source == BUILTIN:
            said = "Description (Hearth's built-in tool)"
        else:
            said = f"Description (written by {pending.source_label}, not checked by Hearth)"
        self.description.setText(f"{said}: {text or '(none given)'}")
        self.arguments.setPlainText(pretty_arguments(pending.call.arguments))
        self.show()
        self.allow_button.setFocus()

    def close_request(self) -> None:
        self.hide()
