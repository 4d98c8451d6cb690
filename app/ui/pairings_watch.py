"""Vision pairings for the window: one background pass at a time per Store, its result shared.

My Models (`app.ui.models.projector_menu`) and the chat's model picker both ask for the
library's pairings; they get the same `PairingsWatch`, so they share one pass and one result
(`app.services.library_pairings`) instead of each reading the headers. A refresh asked for
while a pass runs is run once after it, so the last result covers the latest library.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.models.store import Store
from app.services.library_pairings import LibraryPairings, library_pairings
from app.services.projectors import ProjectorChoice
from app.ui.workers import TaskRunner


class PairingsWatch(QObject):
    changed = Signal(bool)  # pairings are known or changed; True when the user changed one

    def __init__(self, store: Store) -> None:
        super().__init__()
        # Weak: the watch lives as long as its Store, in a map keyed by the Store itself.
        self._store = weakref.ref(store)
        self.pairings: LibraryPairings = library_pairings(store)
        self._running = False
        self._again: list[str] | None = None
        self._again_asked = False
        self._again_tasks: TaskRunner | None = None

    def refresh(self, model_paths: Sequence[str] | None = None,
                tasks: TaskRunner | None = None) -> None:
        """Work out the pairings of ``model_paths`` (default: the whole library) on ``tasks``
        (a window's runner, so closing it waits for the pass), else a shared runner."""
        if self._running:
            self._again, self._again_asked, self._again_tasks = (
                None if model_paths is None else list(model_paths), True, tasks)
            return
        store = self._store()
        if store is None:
            return
        planned = self.pairings.plan(store, model_paths)  # the Store is read here, not there
        self._running = True
        (tasks or _runner()).start(self.pairings.run, planned, on_finished=self._finished)

    @property
    def running(self) -> bool:
        """Whether a pass is running or asked for after it."""
        return self._running or self._again_asked

    def choice(self, model_path: str | Path) -> ProjectorChoice | None:
        return self.pairings.choice(model_path)

    def is_vision(self, model_path: str | Path) -> bool:
        choice = self.pairings.choice(model_path)
        return choice is not None and choice.vision

    def put(self, model_path: str | Path, choice: ProjectorChoice) -> None:
        """The user picked or unpicked a projector: every view hears of it at once."""
        self.pairings.put(model_path, choice)
        self.changed.emit(True)

    def _finished(self) -> None:
        # Also after a pass that failed (logged by the runner): whoever waits for one hears
        # that it ended, with `running` telling whether another follows.
        self._running = False
        if self._again_asked:
            paths, tasks = self._again, self._again_tasks
            self._again, self._again_asked, self._again_tasks = None, False, None
            self.refresh(paths, tasks)
        self.changed.emit(False)


_watches: weakref.WeakKeyDictionary[Store, PairingsWatch] = weakref.WeakKeyDictionary()
_shared_runner: TaskRunner | None = None


def pairings_watch(store: Store) -> PairingsWatch:
    """The one `PairingsWatch` of ``store`` (made on first use, on the GUI thread)."""
    watch = _watches.get(store)
    if watch is None:
        watch = _watches[store] = PairingsWatch(store)
    return watch


def _runner() -> TaskRunner:
    # For views without a window's runner (the chat's picker): one thread, kept for the process.
    global _shared_runner
    if _shared_runner is None:
        _shared_runner = TaskRunner(max_threads=1)
    return _shared_runner
