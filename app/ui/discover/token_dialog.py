"""The "Hub token…" dialog: set or remove the optional Hugging Face token for gated models.

Reading and writing the token may touch the OS keyring, which can block (a locked keyring asks
for a password, a D-Bus call can hang), so every access runs on the page's `TaskRunner`. The
token is never shown back and never logged; the dialog only says whether one is set.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.engine.hub.hf_token import clear_token, get_token, set_token
from app.ui.workers import TaskRunner

_WHERE = {"keyring": "in the system keyring", "file": "in a file only you can read"}


def _save(token: str) -> tuple[str, str | None]:
    where = set_token(token)
    return where, get_token()


def _remove() -> str | None:
    clear_token()
    # HF_TOKEN from the environment still counts; say so rather than claim "not set".
    return get_token()


class TokenDialog(QDialog):
    """Kept alive by its page and reused, so a job finishing after Close finds it still there."""

    tokenChanged = Signal(object)  # the token now in effect (str) or None; GUI thread

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Hugging Face token")
        self._tasks = tasks
        self._has_token = False
        intro = QLabel(
            "Gated models (such as Llama or Gemma) need a Hugging Face access token after you "
            "accept their licence on huggingface.co. Create a read token at "
            "huggingface.co/settings/tokens and paste it here.")
        intro.setWordWrap(True)
        self.state = QLabel("Checking…")
        self.state.setObjectName("tokenState")
        self.edit = QLineEdit()
        self.edit.setObjectName("tokenEdit")
        self.edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.edit.setPlaceholderText("hf_…")
        self.save_button = QPushButton("Save")
        self.remove_button = QPushButton("Remove")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.DestructiveRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.state)
        layout.addWidget(self.edit)
        layout.addWidget(buttons)
        self.edit.textChanged.connect(self._update_buttons)
        self.edit.returnPressed.connect(self.save)
        self.save_button.clicked.connect(self.save)
        self.remove_button.clicked.connect(self.remove)
        self._busy = False
        self._update_buttons()

    def open_and_refresh(self) -> None:
        self.edit.clear()
        self.refresh()
        self.show()
        self.raise_()

    def refresh(self) -> None:
        self._set_busy(True, "Checking…")
        self._tasks.start(get_token, on_returned=lambda token: self._show(token, ""),
                          on_errored=self._failed)

    def save(self) -> None:
        token = self.edit.text().strip()
        if not token or self._busy:
            return
        self._set_busy(True, "Saving…")
        self._tasks.start(_save, token, on_returned=self._saved, on_errored=self._failed)

    def remove(self) -> None:
        if self._busy:
            return
        self._set_busy(True, "Removing…")
        self._tasks.start(_remove, on_returned=self._removed, on_errored=self._failed)

    # -- results, on the GUI thread ------------------------------------------------------------
    def _saved(self, result: tuple[str, str | None]) -> None:
        where, token = result
        self.edit.clear()
        self._show(token, f" (stored {_WHERE.get(where, where)})")
        self.tokenChanged.emit(token)

    def _removed(self, token: str | None) -> None:
        note = " (from the HF_TOKEN environment variable)" if token else ""
        self._show(token, note)
        self.tokenChanged.emit(token)

    def _show(self, token: str | None, note: str) -> None:
        self._has_token = bool(token)
        self._set_busy(False, ("Token: set" if token else "Token: not set") + note)

    def _failed(self, exc: BaseException) -> None:
        # The type only: an exception's text could in principle carry the token.
        self._set_busy(False, f"The token could not be stored or read ({type(exc).__name__}).")

    def _set_busy(self, busy: bool, text: str) -> None:
        self._busy = busy
        self.state.setText(text)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(not self._busy and bool(self.edit.text().strip()))
        self.remove_button.setEnabled(not self._busy and self._has_token)
