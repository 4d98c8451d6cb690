"""Wire finished downloads into the library: the engine's manager calls back, this registers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.gguf.names import split_siblings
from app.engine.hub.downloads import part_path
from app.models.store import Store
from app.services.library import skip_reason

log = logging.getLogger(__name__)


def register_download(store: Store, path: Path) -> list[str]:
    """Add a downloaded model file to the library; returns the errors (empty when it worked).

    Projectors are kept on disk but not listed. A split model is listed by its first part, once
    every part is on disk under its final name, whichever part finished last (llama.cpp finds
    the later parts beside the first). A file downloaded again refreshes its row.
    """
    path = Path(path)
    parts = split_siblings(path)
    first = parts[0]
    if skip_reason(first) is not None:
        return []
    waiting = [p.name for p in parts if not p.is_file() or part_path(p).exists()]
    if waiting:
        log.info("%s is not complete yet (waiting for %s)", first.name, ", ".join(waiting))
        return []
    try:
        info = read_model_info(first)
    except GGUFError as exc:
        log.warning("registering %s: %s", first, exc)
        return [str(exc)]
    except Exception as exc:  # an odd file must not break the download manager's thread
        log.exception("registering %s failed", first)
        return [f"{first} could not be read ({exc})"]
    store.add_model_file(info, "download")
    return []


def library_callback(store: Store) -> Callable[[Path], None]:
    """The ``on_complete`` callback for ``DownloadManager`` that registers files in ``store``."""

    def on_complete(path: Path) -> None:
        register_download(store, path)

    return on_complete
