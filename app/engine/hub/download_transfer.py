"""One download job's bytes: from what is on disk to a verified file under its final name. No Qt.

Runs on the job's thread while it holds the part file's lock. See ``app.engine.hub.downloads`` for
the rules; this module is their mechanics: hashing what is already there, the HTTP transfer
with retries, refusing bytes that cannot be appended, and the flushed rename.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.engine.hub.download_http import Transient, open_file, raise_for_status
from app.engine.hub.download_lock import PartLock
from app.engine.hub.download_meter import Meter
from app.engine.hub.download_records import (
    DiskUsage,
    DownloadError,
    DownloadEvent,
    DownloadRecord,
    part_path,
)
from app.engine.hub.download_verify import durable_replace, hash_file, matches
from app.engine.hub.hashing_writer import HashingWriter
from app.engine.hub.http_range import range_problem
from app.engine.hub.part_origin import PartOrigin, drop_origin, read_origin, write_origin
from app.engine.units import human_bytes

log = logging.getLogger(__name__)

SPACE_MARGIN = 64 * 1024 * 1024  # leave the disk a little room beyond the file itself


class Stopped(Exception):
    """The user paused or cancelled the job (``Job.stop`` says which)."""


class _StartOver(Exception):
    """The bytes on disk cannot be continued (another version, a wrong range): from zero."""


class Job:
    """One run of a download. ``record.status`` and ``finished`` change under the manager's lock.

    ``finished`` is set once the job has stopped and everything about its end (journal, part
    file, lock, events) is done; while it is clear, another call may not start a new job for
    the key. ``earlier`` is the record from before this run, which says whose bytes a part file
    on disk holds.
    """

    def __init__(self, record: DownloadRecord, earlier: DownloadRecord | None) -> None:
        self.record = record
        self.earlier = earlier
        self.stop: Literal["pause", "cancel"] | None = None
        self.wake = threading.Event()
        self.finished = threading.Event()
        self.hasher = hashlib.sha256()  # of the bytes in the part file; rebound on a restart
        self.lock = PartLock(part_path(Path(record.dest)))

    def check(self) -> None:
        if self.stop:
            raise Stopped()


@dataclass(frozen=True)
class TransferOptions:
    token: Callable[[], str | None]  # read per request: the user may set one after a 401
    disk_usage: Callable[[Path], DiskUsage]
    retries: int
    backoff: float
    chunk: int
    timeout: float


def part_size(dest: Path) -> int:
    try:
        return part_path(dest).stat().st_size
    except FileNotFoundError:
        return 0


def has_size(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


class Transfer:
    def __init__(self, job: Job, options: TransferOptions,
                 emit: Callable[[DownloadEvent], None]) -> None:
        self.job, self.options, self.emit = job, options, emit

    def run(self) -> None:
        """Bring the file to its final name, verified; raises what ends the job otherwise."""
        job, record = self.job, self.job.record
        dest = Path(record.dest)
        part = part_path(dest)
        self._drop_other_version(part)
        if not part.exists() and has_size(dest, record.size):
            if self._existing_matches(dest):
                return
            log.warning("%s differs from the Hub's file; downloading it again", dest)
        offset = part_size(dest)
        if offset > record.size:
            part.unlink()
            drop_origin(part)
            offset = 0
        self._check_space(dest, record.size - offset)
        job.hasher = hashlib.sha256()
        if offset and record.sha256:  # the running hash died with the run that wrote them
            hash_file(part, job.hasher, Meter(record.key, offset, 0, self.emit, "verifying"),
                      job.check)
        self.emit(DownloadEvent(record.key, "started", offset, record.size))
        meter = Meter(record.key, record.size, offset, self.emit)
        offset = self._receive(part, offset, meter)
        meter.report(offset, force=True)
        self._verify(part)
        durable_replace(part, dest)
        drop_origin(part)

    def _receive(self, part: Path, offset: int, meter: Meter) -> int:
        """Fetch until the part file is whole, retrying transient failures with back-off."""
        job, record, options = self.job, self.job.record, self.options
        failures = restarts = 0
        while offset < record.size or not part.exists():
            before = offset
            try:
                offset = self._fetch(part, offset, meter)
            except Transient as exc:
                offset = part_size(Path(record.dest))
                failures = 0 if offset > before else failures + 1
                if failures > options.retries:
                    raise DownloadError(f"{record.filename}: {exc} (gave up after "
                                        f"{options.retries} retries).") from None
                delay = options.backoff * 2 ** max(0, failures - 1)
                self.emit(DownloadEvent(record.key, "retrying", offset, record.size,
                                        message=f"{exc}; retrying in {delay:.1f} s"))
                if job.wake.wait(delay) and job.stop:
                    raise Stopped() from None
            except _StartOver as exc:
                restarts += 1
                if restarts > options.retries:
                    raise DownloadError(f"{record.filename}: {exc}.") from None
                part.unlink(missing_ok=True)
                drop_origin(part)
                offset, job.hasher = 0, hashlib.sha256()
                self.emit(DownloadEvent(record.key, "retrying", 0, record.size,
                                        message=f"{exc}; starting over"))
        return offset

    def _drop_other_version(self, part: Path) -> None:
        """Delete a part file whose bytes may be of another version of the file."""
        if not part.exists():
            drop_origin(part)
            return
        record, earlier = self.job.record, self.job.earlier
        if record.sha256:
            stale = earlier is None or earlier.sha256 != record.sha256
        else:  # no hash will catch a mix of two versions at the end: trust only the revision
            origin = read_origin(part)
            stale = origin is None or origin.revision != record.revision
        if stale:
            part.unlink(missing_ok=True)
            drop_origin(part)

    def _existing_matches(self, dest: Path) -> bool:
        """Whether a file of the right size under the final name is the Hub's (its sha256)."""
        record = self.job.record
        if not record.sha256:
            return True  # the size is all the Hub says about it
        hasher = hashlib.sha256()
        hash_file(dest, hasher, Meter(record.key, record.size, 0, self.emit, "verifying"),
                  self.job.check)
        return matches(record.sha256, hasher)

    def _check_space(self, dest: Path, need: int) -> None:
        folder = dest.parent
        while not folder.exists():
            folder = folder.parent
        free = self.options.disk_usage(folder).free
        if need + SPACE_MARGIN > free:
            raise DownloadError(
                f"Not enough disk space for {dest.name}: it needs {human_bytes(need)} more, "
                f"and {folder} has {human_bytes(free)} free. Free some space and try again.")

    def _verify(self, part: Path) -> None:
        record = self.job.record
        if not matches(record.sha256, self.job.hasher):
            part.unlink(missing_ok=True)
            drop_origin(part)
            raise DownloadError(
                f"{record.filename} arrived corrupted (its sha256 does not match the Hub's); "
                "the partial file was deleted. Try the download again.")

    def _fetch(self, part: Path, offset: int, meter: Meter) -> int:
        """Receive from ``offset`` into ``part``, hashing into ``job.hasher``; the new offset."""
        job, record, options = self.job, self.job.record, self.options
        response, conn = open_file(record.url, offset, options.token(), options.timeout,
                                   record.filename)
        try:
            if response.status == 416 and offset >= record.size:
                return offset
            if response.status == 206:
                problem = range_problem(response.getheader("Content-Range"), offset, record.size)
                if problem:  # appending these bytes would corrupt the part file
                    raise _StartOver(f"the Hub sent the wrong part of the file ({problem})")
            elif response.status == 200:
                self._check_length(response)
                if offset:
                    # The server ignored Range: start over rather than append the wrong bytes.
                    # The hash starts over too (a new object: hashlib's cannot be reset in
                    # place), on the job so a retry after this point keeps hashing new bytes.
                    offset = 0
                    job.hasher = hashlib.sha256()
                    part.write_bytes(b"")
            else:
                raise_for_status(record.repo_id, record.filename, response.status)
            self._check_origin(part, offset, response.getheader("ETag"))
            with part.open("r+b" if part.exists() else "wb", buffering=0) as out:
                out.seek(offset)
                out.truncate()
                with HashingWriter(out, job.hasher, options.chunk) as sink:
                    while offset < record.size:
                        job.check()
                        view = sink.take()
                        try:
                            n = response.readinto(view)
                        except (OSError, http.client.HTTPException) as exc:
                            sink.give_back(view)
                            raise Transient(
                                f"the connection dropped ({type(exc).__name__})") from None
                        if not n:
                            sink.give_back(view)
                            raise Transient("the connection closed early")
                        sink.put(view, n)
                        offset += n
                        meter.report(offset)
            return offset
        finally:
            conn.close()

    def _check_length(self, response: http.client.HTTPResponse) -> None:
        record = self.job.record
        length = response.getheader("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) != record.size:
            raise DownloadError(
                f"{record.filename}: the Hub sent {human_bytes(int(length))} for a file listed "
                f"as {human_bytes(record.size)}; it may have changed. Open the repository "
                "again and download it anew.")

    def _check_origin(self, part: Path, offset: int, etag: str | None) -> None:
        """For a file without a sha256: continue only bytes of the same ETag; note a new one."""
        record = self.job.record
        if record.sha256:
            return
        if offset:
            origin = read_origin(part)
            if origin is None or origin.etag != etag:
                raise _StartOver("the file changed on the Hub since the bytes on disk came")
        else:
            write_origin(part, PartOrigin(record.revision, etag))
