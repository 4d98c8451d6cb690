"""My Models' "Vision projector" button: which projector each model loads with, and the user's
pick, unpick or return to automatic pairing.

Pairings come from `app.services.projectors`; reading them means reading the headers of the
files beside each model, so a refresh runs on the page's `TaskRunner` and the table and details
redraw when it returns (`changed`). The pass and its result are the Store's `PairingsWatch`,
shared with the chat's model picker, so one pass serves both and a pick here reaches it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QPushButton, QWidget

from app.models.store import Store
from app.services.projectors import (
    ProjectorChoice,
    ProjectorPickError,
    choose_projector,
    reset_projector,
)
from app.ui.pairings_watch import pairings_watch
from app.ui.plain_text import escaped_rich
from app.ui.workers import TaskRunner


class ProjectorMenu(QObject):
    changed = Signal(bool)  # pairings are known or changed; True when the user changed one

    def __init__(self, store: Store, tasks: TaskRunner, parent: QWidget) -> None:
        super().__init__(parent)
        self._store = store
        self._tasks = tasks
        self._parent = parent
        self._watch = pairings_watch(store)
        # A bound method: Qt drops the connection when this menu is deleted, so a pass ending
        # after the page closed goes nowhere.
        self._watch.changed.connect(self._pairings_changed)
        self._model: str | None = None  # the selected model's path
        self.button = QPushButton("Vision projector")
        self.button.setToolTip("The mmproj file a vision model reads images with")
        menu = QMenu(self.button)
        self.pick_action = menu.addAction("Pick a projector file…", self.pick_file)
        self.none_action = menu.addAction("Load without a projector (text only)",
                                          partial(self.set_projector, None))
        self.auto_action = menu.addAction("Pair automatically (from the model's folder)",
                                          self.pair_automatically)
        self.button.setMenu(menu)
        self.select(None)

    # -- what the page asks ----------------------------------------------------------------------
    def refresh(self, model_paths: Sequence[str]) -> None:
        """Work out every model's projector in the background; `changed` when known."""
        self._watch.refresh(model_paths, self._tasks)

    def choice(self, model_path: str) -> ProjectorChoice | None:
        """The model's projector, None while it is being worked out."""
        return self._watch.choice(model_path)

    def is_vision(self, model_path: str) -> bool:
        return self._watch.is_vision(model_path)

    def select(self, model_path: str | None) -> None:
        self._model = model_path
        choice = self._watch.choice(model_path) if model_path else None
        self.button.setEnabled(model_path is not None)
        self.none_action.setEnabled(choice is None or choice.path is not None)
        self.auto_action.setEnabled(choice is not None and choice.chosen)

    # -- the user's choices ----------------------------------------------------------------------
    def pick_file(self) -> None:
        if self._model is None:
            return
        path, _ = QFileDialog.getOpenFileName(
            self._parent, f"Vision projector for {Path(self._model).name}",
            str(Path(self._model).parent), "GGUF files (*.gguf);;All files (*)")
        if path:
            self.set_projector(path)

    def set_projector(self, projector: str | Path | None) -> None:
        """Load the selected model with ``projector`` from now on, or with none (None)."""
        if self._model is None:
            return
        try:
            choice = choose_projector(self._store, self._model, projector)
        except ProjectorPickError as exc:
            QMessageBox.warning(self._parent, "Not a vision projector", escaped_rich(str(exc)))
            return
        self._changed(self._model, choice)

    def pair_automatically(self) -> None:
        if self._model is not None:
            self._changed(self._model, reset_projector(self._store, self._model))

    # -- private ---------------------------------------------------------------------------------
    def _changed(self, model: str, choice: ProjectorChoice) -> None:
        self._watch.put(model, choice)  # `changed` comes back through the watch

    def _pairings_changed(self, user_choice: bool) -> None:
        self.select(self._model)
        self.changed.emit(user_choice)
