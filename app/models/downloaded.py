"""Wire finished downloads into the library: the engine's manager calls back, this registers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

from app.engine.hub import is_mmproj
from app.models.library import import_path
from app.models.store import Store

log = logging.getLogger(__name__)

_LATER_PART = re.compile(r"-(\d{5})-of-\d{5}\.gguf$", re.IGNORECASE)


def register_download(store: Store, path: Path) -> list[str]:
    """Add a downloaded model file to the library; returns the errors (empty when it worked).

    Projectors and later parts of split models are not models on their own, so they are kept on
    disk but not listed (llama.cpp finds later parts beside the first).
    """
    later = _LATER_PART.search(path.name)
    if is_mmproj(path.name) or (later and int(later.group(1)) > 1):
        return []
    report = import_path(store, path, source="download")
    for error in report.errors:
        log.warning("registering %s: %s", path, error)
    return report.errors


def library_callback(store: Store) -> Callable[[Path], None]:
    """The ``on_complete`` callback for ``DownloadManager`` that registers files in ``store``."""

    def on_complete(path: Path) -> None:
        register_download(store, path)

    return on_complete
