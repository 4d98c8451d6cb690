"""What several sub-commands share: the user-fixable error, the Store, model lookup, Ctrl+C."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.models.store import Store


class CliError(Exception):
    """A problem the user can fix; printed as one message, exit code 1."""


@contextlib.contextmanager
def open_store() -> Iterator[Store]:
    from app.engine.logfile import LogFile
    from app.engine.paths import data_paths
    from app.models.store import Store

    paths = data_paths().ensure()
    log_file = LogFile(paths.logs)
    store = Store.open(paths.database)
    try:
        yield store
    finally:
        store.close()
        log_file.close()


def resolve_model(store: Store, spec: str) -> str:
    """A model path from a file path, "starter", or a (part of a) name in the library;
    CliError for a vision projector (it loads with its model, never as one)."""
    from app.engine.vision.not_a_model import projector_refusal

    path = _resolve_path(store, spec)
    reason = projector_refusal(path)
    if reason is not None:
        raise CliError(reason)
    return path


def _resolve_path(store: Store, spec: str) -> str:
    from app.engine.starter import StarterError
    from app.services.library import ensure_starter, starter_record

    if spec == "starter":
        record = starter_record(store)
        if record is None:
            print("Preparing the starter model (Gemma 3 270M, 253 MB)…", file=sys.stderr)
            try:
                record = ensure_starter(store)
            except StarterError as exc:
                raise CliError(str(exc)) from exc
        return record.path
    path = Path(spec).expanduser()
    if path.is_file():
        return str(path.absolute())
    if os.sep in spec or spec.lower().endswith(".gguf"):
        raise CliError(f"No such file: {spec}")
    needle = spec.lower()
    named = [(r, (r.name.lower(), Path(r.path).name.lower())) for r in store.list_model_files()]
    # An exact name wins over substrings, so "tiny" can pick "tiny" beside "tiny-chatml".
    matches = [r for r, names in named if needle in names]
    matches = matches or [r for r, names in named if any(needle in n for n in names)]
    if len(matches) == 1:
        return matches[0].path
    if not matches:
        raise CliError(f"No model in your library matches {spec!r}. `hearth models` lists them; "
                       "you can also give a path to a .gguf file, or `starter`.")
    listed = "\n".join(f"  {r.name}  {r.path}" for r in matches)
    raise CliError(f"{spec!r} matches several models; give more of the name or a path:\n{listed}")


@contextlib.contextmanager
def ctrl_c(action: Callable[[], None]) -> Iterator[None]:
    """While active, Ctrl+C runs ``action`` (cancel the engine job) instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda _sig, _frame: action())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
