"""The library's vision pairings as last worked out, one result shared by every reader.

Working out which projector each model loads with reads the headers of the files beside it
(`app.services.projectors.choices_for`): too slow for the GUI thread on a large library. A pass
is planned where the Store is at hand (`plan`: the model list and the user's picks, one read
each), run anywhere (`run`: files only, so a worker may finish it after the Store closed), and
its result kept here. My Models, the chat's model picker and the "cannot read images" notice
all read that one result (`choice`, `vision_names`) without touching a file; a pick the user
makes is put in at once (`put`) and survives a pass planned before it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.models.store import Store
from app.services.projectors import ProjectorChoice, choices_for, user_picks

__all__ = ["LibraryPairings", "PairingPass", "library_pairings"]


@dataclass(frozen=True)
class PairingPass:
    """What one pass works out: these models, with the user's picks as they were."""

    model_paths: tuple[str, ...]
    picks: dict[str, str] = field(hash=False)
    edits: int  # the user's picks put in before this pass was planned


class LibraryPairings:
    """One Store's pairings from the latest pass (thread-safe; see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._choices: dict[str, ProjectorChoice] = {}
        self._known = False
        self._edits = 0
        self._puts: dict[str, tuple[int, ProjectorChoice]] = {}  # model: (edit number, choice)

    def plan(self, store: Store, model_paths: Iterable[str | Path] | None = None
             ) -> PairingPass:
        """A pass over ``model_paths`` (default: the whole library); reads the Store only."""
        if model_paths is None:
            model_paths = [r.path for r in store.list_model_files()]
        with self._lock:
            edits = self._edits
        return PairingPass(tuple(str(p) for p in model_paths), user_picks(store), edits)

    def run(self, planned: PairingPass) -> dict[str, ProjectorChoice]:
        """Read the headers (slow: off the GUI thread), keep the result and return it."""
        found = choices_for(planned.model_paths, planned.picks)
        with self._lock:
            # A pick the user made while this pass ran wins over what the pass was told.
            for model, (edit, choice) in self._puts.items():
                if edit > planned.edits and model in found:
                    found[model] = choice
            self._choices = found
            self._known = True
            return dict(found)

    @property
    def known(self) -> bool:
        """Whether a pass has finished (before that, every `choice` is None)."""
        with self._lock:
            return self._known

    def choice(self, model_path: str | Path) -> ProjectorChoice | None:
        """The model's projector from the latest pass; None while not worked out."""
        with self._lock:
            return self._choices.get(str(model_path))

    def put(self, model_path: str | Path, choice: ProjectorChoice) -> None:
        """The user just picked or unpicked the model's projector."""
        with self._lock:
            self._edits += 1
            self._puts[str(model_path)] = (self._edits, choice)
            self._choices[str(model_path)] = choice

    def vision_names(self, store: Store) -> list[str]:
        """File names of the library's models that load with a projector, in library order.
        Served from the latest pass; only before any has finished is one run here."""
        if not self.known:
            self.run(self.plan(store))
        with self._lock:
            return [Path(path).name for path, choice in self._choices.items() if choice.vision]


_shared: weakref.WeakKeyDictionary[Store, LibraryPairings] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def library_pairings(store: Store) -> LibraryPairings:
    """The pairings of ``store``'s library: one object per Store in this process."""
    with _shared_lock:
        pairings = _shared.get(store)
        if pairings is None:
            pairings = _shared[store] = LibraryPairings()
        return pairings
