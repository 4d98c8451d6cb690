"""Which vision projector (mmproj) each library model loads with: the user's pick, else the
one found beside it.

Pairing is automatic (`app.engine.gguf.projector_pairing`: same folder, name rules, headers
checked); the user may pick another projector file or none. The picks are one setting, a map
from model path to projector path ("" meaning "no projector"), so a whole library's choices
are one read and need no schema change; a model without an entry is paired automatically.
A picked file that has since gone falls back to automatic pairing rather than failing a load.

Folder pairings are cached by the folder's modification time (adding, removing or renaming a
file changes it), so listing the library or the API's models does not re-read every header.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.engine.gguf.projector_pairing import FolderPairing, is_projector, pair_folder
from app.models.store import Store

__all__ = ["PROJECTORS_SETTING", "ProjectorChoice", "ProjectorPickError", "choices_for",
           "choose_projector", "folder_paired", "library_projectors", "projector_choice",
           "projector_path", "reset_projector", "user_picks"]

PROJECTORS_SETTING = "model_projectors"
_NONE = ""  # the user's "load this model without a projector"


class ProjectorPickError(ValueError):
    """A file the user picked that is not a vision projector; the message is for the user."""


@dataclass(frozen=True)
class ProjectorChoice:
    """The projector a model loads with (None: text only), and whether the user chose it."""

    path: Path | None
    size: int  # the projector file's bytes (0 without one)
    chosen: bool  # the user picked or unpicked it; False: automatic pairing

    @property
    def vision(self) -> bool:
        return self.path is not None


_cache_lock = threading.Lock()
_paired: dict[str, int] = {}  # folder → the modification time its cached pairing is for


@functools.lru_cache(maxsize=256)
def _pairing(folder: str, _mtime_ns: int) -> FolderPairing:
    pairing = pair_folder(Path(folder))
    _paired[folder] = _mtime_ns
    return pairing


def folder_paired(model_path: str | Path) -> bool:
    """Whether the pairing of the model's folder, as the folder is now, has been worked out
    (then `projector_choice` reads no header). Never waits for a pass that is running."""
    folder = Path(model_path).parent
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return True  # no folder: nothing to read
    return _paired.get(str(folder)) == mtime


def _auto(model: Path) -> Path | None:
    try:
        mtime = os.stat(model.parent).st_mtime_ns
    except OSError:
        return None
    with _cache_lock:
        pairing = _pairing(str(model.parent), mtime)
    return pairing.models.get(model)


def user_picks(store: Store) -> dict[str, str]:
    """The user's picks, model path to projector path ("": none); one setting read."""
    saved = store.get_setting(PROJECTORS_SETTING, {})
    if not isinstance(saved, dict):  # a hand-edited value never stops a model from loading
        return {}
    return {k: v for k, v in saved.items() if isinstance(k, str) and isinstance(v, str)}


def _choice(model_path: str | Path, picks: dict[str, str]) -> ProjectorChoice:
    model = Path(model_path)
    picked = picks.get(str(model))
    if picked == _NONE:
        return ProjectorChoice(None, 0, chosen=True)
    if picked is not None and Path(picked).is_file():
        return ProjectorChoice(Path(picked), _size(Path(picked)), chosen=True)
    found = _auto(model)
    return ProjectorChoice(found, _size(found) if found else 0, chosen=False)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def projector_choice(store: Store, model_path: str | Path) -> ProjectorChoice:
    """The projector the model at ``model_path`` loads with, and whether the user chose it."""
    return _choice(model_path, user_picks(store))


def projector_path(store: Store, model_path: str | Path) -> Path | None:
    """The projector to load with the model at ``model_path``, or None (text only)."""
    return projector_choice(store, model_path).path


def library_projectors(store: Store, model_paths: Iterable[str | Path]
                       ) -> dict[str, ProjectorChoice]:
    """Each model path's `ProjectorChoice`, with one read of the user's picks."""
    return choices_for(model_paths, user_picks(store))


def choices_for(model_paths: Iterable[str | Path], picks: dict[str, str]
                ) -> dict[str, ProjectorChoice]:
    """Each model path's `ProjectorChoice` given the user's ``picks`` (`user_picks`): reads
    headers beside the models but not the Store, so a worker may run it after the Store closed."""
    return {str(path): _choice(path, picks) for path in model_paths}


def choose_projector(store: Store, model_path: str | Path, projector: str | Path | None
                     ) -> ProjectorChoice:
    """Load ``model_path`` with ``projector`` from now on, or with none (None).

    `ProjectorPickError` when the file's GGUF header does not say it is a projector."""
    if projector is not None:
        projector = Path(projector).expanduser().absolute()
        if not projector.is_file():
            raise ProjectorPickError(f"{projector} does not exist.")
        if not is_projector(projector):
            raise ProjectorPickError(
                f"{projector.name} is not a vision projector (its GGUF header does not say "
                "\"clip\"). Pick the mmproj file that came with the model.")
    _save(store, str(Path(model_path)), _NONE if projector is None else str(projector))
    return projector_choice(store, model_path)


def reset_projector(store: Store, model_path: str | Path) -> ProjectorChoice:
    """Forget the user's pick: the model is paired automatically again."""
    _save(store, str(Path(model_path)), None)
    return projector_choice(store, model_path)


def _save(store: Store, model: str, value: str | None) -> None:
    picks = user_picks(store)
    if value is None:
        picks.pop(model, None)
    else:
        picks[model] = value
    store.set_setting(PROJECTORS_SETTING, picks)
