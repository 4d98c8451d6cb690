"""The values a download is described by (records, events, errors) and where its files go. No Qt.

``DownloadRecord``'s fields are the columns of the Store's ``downloads`` table: adding one here
needs a migration there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, NamedTuple, Protocol

Status = Literal["queued", "running", "paused", "done", "failed", "cancelled"]
EventKind = Literal["queued", "started", "progress", "verifying", "paused", "done", "failed",
                    "cancelled", "retrying"]

# The reason a job is paused when another Hearth process holds its .part file's lock.
BUSY_ELSEWHERE = "already downloading in another Hearth window"


class DownloadError(Exception):
    """A download that cannot go on; the message is for the user."""


@dataclass(frozen=True)
class DownloadRecord:
    """A file's download as persisted, so a relaunch can resume it."""

    key: str
    repo_id: str
    filename: str
    revision: str
    url: str
    size: int
    sha256: str | None
    dest: str
    status: Status = "queued"
    error: str | None = None


@dataclass(frozen=True)
class DownloadEvent:
    """``verifying`` events count hashed bytes of an existing file in ``done`` out of ``total``
    (the bytes to hash); every other kind counts the file's bytes on disk."""

    key: str
    kind: EventKind
    done: int = 0
    total: int = 0
    speed: float = 0.0  # bytes per second
    eta: float | None = None  # seconds
    message: str = ""
    path: str = ""


class DownloadJournal(Protocol):
    def save_download(self, record: DownloadRecord) -> None: ...
    def get_download(self, key: str) -> DownloadRecord | None: ...
    def delete_download(self, key: str) -> None: ...


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


def download_key(repo_id: str, filename: str) -> str:
    return f"{repo_id}/{filename}"


def target_path(models_dir: Path, repo_id: str, filename: str) -> Path:
    """``models/<publisher>/<repo>/<file>``; refuses names that would land outside the folder."""
    parts = [*repo_id.split("/"), *PurePosixPath(filename.replace("\\", "/")).parts]
    if (len(repo_id.split("/")) != 2 or any(p in ("", ".", "..") for p in parts)
            or PurePosixPath(filename).is_absolute() or ":" in filename):
        raise DownloadError(f"Refusing to download {filename!r} from {repo_id!r}: the name would "
                            "escape the models folder.")
    root = models_dir.resolve()
    dest = root.joinpath(*parts)
    if not dest.resolve().is_relative_to(root):
        raise DownloadError(f"Refusing to download {filename!r}: it would escape {root}.")
    return dest


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")
