"""Which version of a file the bytes in a ``.part`` came from, for files without a sha256. No Qt.

The Hub gives no sha256 for a file kept outside LFS, so the end of a download cannot prove the
bytes are one version's. Its revision and ETag are kept in ``<name>.part.json`` beside the part
(the journal's columns are fixed), and a resume from another revision or ETag starts over.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class PartOrigin:
    revision: str
    etag: str | None  # as the server sent it; None until the first response


def origin_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def read_origin(part: Path) -> PartOrigin | None:
    """The recorded origin, or None when there is none or it cannot be trusted."""
    try:
        data = json.loads(origin_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    revision, etag = data.get("revision"), data.get("etag")
    if not isinstance(revision, str) or not (etag is None or isinstance(etag, str)):
        return None
    return PartOrigin(revision, etag)


def write_origin(part: Path, origin: PartOrigin) -> None:
    path = origin_path(part)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(asdict(origin)), encoding="utf-8")
    os.replace(temporary, path)


def drop_origin(part: Path) -> None:
    origin_path(part).unlink(missing_ok=True)
