"""The download manager: a queue of Hub files fetched in parallel, resumable, verified. No Qt.

Each file is written to ``<dest>.part`` and hashed while it arrives; only when the sha256 matches
the Hub's LFS hash is it renamed to its final name. A dropped connection, a pause, or a killed
process all resume with an HTTP ``Range`` request from the bytes already on disk. State lives in
a ``DownloadJournal`` (the Store, wired in ``app.models.download_journal``), so the engine does
not depend on the data layer. Events go to one callback from the worker threads; the GUI turns
them into queued signals.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NamedTuple, Protocol
from urllib.parse import urljoin, urlsplit

from app.engine.gguf_info import human_bytes
from app.engine.hub import FileTarget, HubError, gated_error

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # large enough to amortise Python per-read costs, small enough for L2
SPACE_MARGIN = 64 * 1024 * 1024  # leave the disk a little room beyond the file itself
_PROGRESS_EVERY = 0.1  # seconds between progress events per file

Status = Literal["queued", "running", "paused", "done", "failed", "cancelled"]
EventKind = Literal["queued", "started", "progress", "paused", "done", "failed", "cancelled",
                    "retrying"]


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


class _Retry(Exception):
    """A transient failure: the transfer resumes from the bytes on disk after a pause."""


class _Stopped(Exception):
    pass


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


class _Job:
    """One run of a download. ``record.status`` and ``finished`` change under the manager's lock.

    ``finished`` is set once the job has stopped and everything about its end (journal, part
    file, events) is done; while it is clear, another call may not start a new job for the key.
    """

    def __init__(self, record: DownloadRecord) -> None:
        self.record = record
        self.stop: Literal["pause", "cancel"] | None = None
        self.wake = threading.Event()
        self.finished = threading.Event()
        self.hasher = hashlib.sha256()  # of the bytes in the part file; rebound on a restart


class DownloadManager:
    """Queue Hub files and fetch at most ``max_parallel`` at once; see the module docstring."""

    def __init__(
        self,
        models_dir: Path,
        on_event: Callable[[DownloadEvent], None] | None = None,
        *,
        max_parallel: int = 2,
        journal: DownloadJournal | None = None,
        on_complete: Callable[[Path], None] | None = None,
        token: str | None = None,
        disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage,  # type: ignore[assignment]
        retries: int = 5,
        backoff: float = 0.5,
        chunk_size: int = CHUNK,
        timeout: float = 30.0,
    ) -> None:
        self.models_dir = Path(models_dir)
        self._emit_cb = on_event
        self._max = max(1, max_parallel)
        self._journal = journal
        self._on_complete = on_complete
        self._token = token
        self._disk_usage = disk_usage
        self._retries = retries
        self._backoff = backoff
        self._chunk = chunk_size
        self._timeout = timeout
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._queue: list[_Job] = []
        # Job objects, not keys: a finished job's thread may still be leaving while a new job
        # for the same key starts, and each must count (and be paused by close) on its own.
        self._active: set[_Job] = set()

    # public API

    def set_token(self, token: str | None) -> None:
        """Use ``token`` for requests made from now on (the user may set it after a 401)."""
        # A plain attribute swap: each request reads it once, so no lock is needed.
        self._token = token

    def add(self, target: FileTarget) -> str:
        """Queue ``target``; resumes a part file left by an earlier run. Returns the job key."""
        key = download_key(target.repo_id, target.filename)
        dest = target_path(self.models_dir, target.repo_id, target.filename)
        record = DownloadRecord(key, target.repo_id, target.filename, target.revision, target.url,
                                target.size, target.sha256, str(dest))
        earlier = self._journal.get_download(key) if self._journal else None
        part = part_path(dest)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.finished.is_set():
                return key
            # No job of this session owns the part file now, so it may go.
            if part.exists() and (earlier is None or earlier.sha256 != target.sha256):
                # The bytes on disk belong to another version of the file (or to no known one).
                part.unlink(missing_ok=True)
            # Already downloaded (by an earlier run, or another app using the same folder):
            # finish it at once on a worker, which registers it, instead of fetching it again.
            complete = not part.exists() and _has_size(dest, target.size)
            job = _Job(record)
            self._jobs[key] = job
            if complete:
                self._active.add(job)
            else:
                self._queue.append(job)
        if complete:
            self._emit(DownloadEvent(key, "queued", 0, target.size))
            self._start(job, fetch=False)
            return key
        self._save(record)
        self._emit(DownloadEvent(key, "queued", self._part_size(dest), target.size))
        self._pump()
        return key

    def pause(self, key: str) -> None:
        self._stop(key, "pause")

    def cancel(self, key: str) -> None:
        self._stop(key, "cancel")

    def resume(self, key: str) -> None:
        with self._lock:
            job = self._jobs.get(key)
            if (job is None or not job.finished.is_set()
                    or job.record.status not in ("paused", "failed")):
                return
            new = _Job(replace(job.record, status="queued", error=None))
            self._jobs[key] = new
            self._queue.append(new)
        self._save(new.record)
        self._pump()

    def status(self, key: str) -> Status | None:
        job = self._jobs.get(key)
        return job.record.status if job else None

    def record(self, key: str) -> DownloadRecord | None:
        job = self._jobs.get(key)
        return job.record if job else None

    def wait(self, keys: list[str] | None = None, timeout: float | None = None) -> bool:
        """Block until the given (or all) jobs stop running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for key in keys if keys is not None else list(self._jobs):
            while True:
                job = self._jobs.get(key)
                if job is None:
                    break
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not job.finished.wait(left):
                    return False
                if self._jobs.get(key) is job:
                    break
        return True

    def close(self) -> None:
        """Pause everything still running (their parts stay for the next launch)."""
        with self._lock:
            self._queue.clear()
            jobs = list(self._active)
            ends = [self._decide_stop(job, "pause") for job in jobs]
        for job, end in zip(jobs, ends, strict=True):
            if end is not None:
                self._finish(job, end)
        deadline = time.monotonic() + 10
        for job in jobs:
            if not job.finished.wait(max(0.0, deadline - time.monotonic())):
                break

    # scheduling

    def _stop(self, key: str, how: Literal["pause", "cancel"]) -> None:
        with self._lock:
            job = self._jobs.get(key)
            end = None if job is None else self._decide_stop(job, how)
        if job is not None and end is not None:
            # Journal writes, unlinking and listeners run outside the lock.
            self._finish(job, end)

    def _decide_stop(self, job: _Job, how: Literal["pause", "cancel"]) -> Status | None:
        """Under the lock: the status to finish ``job`` with now, or None when there is nothing
        to finish here (its thread will see ``job.stop``, or it has already ended)."""
        status = job.record.status
        if job.finished.is_set():
            # Pausing a paused (or failed) job changes nothing; cancelling one removes its part
            # file and journal row. Done and cancelled jobs are over.
            if how == "pause" or status not in ("paused", "failed"):
                return None
        elif job in self._queue:
            self._queue.remove(job)
        elif status in ("queued", "running"):
            job.stop = how
            job.wake.set()
            return None
        else:
            return None  # another call or its own thread is finishing it
        end: Status = "paused" if how == "pause" else "cancelled"
        job.record = replace(job.record, status=end, error=None)
        job.finished.clear()  # until `_finish` is done no new job may take over the key
        return end

    def _pump(self) -> None:
        with self._lock:
            while self._queue and len(self._active) < self._max:
                job = self._queue.pop(0)
                self._active.add(job)
                self._start(job)

    def _start(self, job: _Job, fetch: bool = True) -> None:
        # "hearth-" lets the test plugin's leak check see a download thread left running.
        threading.Thread(target=self._run, args=(job, fetch),
                         name=f"hearth-download {job.record.key}", daemon=True).start()

    def _finish(self, job: _Job, status: Status, message: str = "", done: int = 0) -> None:
        with self._lock:
            job.record = replace(job.record, status=status, error=message or None)
        dest = Path(job.record.dest)
        if status == "cancelled":
            part_path(dest).unlink(missing_ok=True)
        if status in ("cancelled", "done"):
            if self._journal:
                self._journal.delete_download(job.record.key)
        else:
            self._save(job.record)
        kind: EventKind = status  # type: ignore[assignment]
        self._emit(DownloadEvent(job.record.key, kind, done or self._part_size(dest),
                                 job.record.size, message=message, path=str(dest)))
        job.finished.set()

    def _run(self, job: _Job, fetch: bool = True) -> None:
        key = job.record.key
        try:
            if not fetch:
                self._complete(job)
                return
            with self._lock:
                job.record = replace(job.record, status="running")
            self._save(job.record)
            self._transfer(job)
        except _Stopped:
            self._finish(job, "paused" if job.stop == "pause" else "cancelled")
        except (DownloadError, HubError) as exc:
            self._finish(job, "failed", str(exc))
        except Exception as exc:  # a bug must end this download, never the app
            log.exception("download %s failed", key)
            self._finish(job, "failed", f"The download failed unexpectedly ({exc}).")
        finally:
            with self._lock:
                self._active.discard(job)
            self._pump()

    # the transfer

    def _transfer(self, job: _Job) -> None:
        record = job.record
        dest = Path(record.dest)
        part = part_path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        offset = self._part_size(dest)
        if offset > record.size:
            part.unlink()
            offset = 0
        self._check_space(dest, record.size - offset)
        job.hasher = hasher = hashlib.sha256()
        if offset:
            with part.open("rb") as fh:
                while block := fh.read(self._chunk):
                    hasher.update(block)
        self._emit(DownloadEvent(record.key, "started", offset, record.size))
        meter = _Meter(record.key, record.size, offset, self._emit)
        failures = 0
        while offset < record.size or not part.exists():
            before = offset
            try:
                offset = self._fetch(job, part, offset, meter)
            except _Retry as exc:
                offset = self._part_size(dest)
                failures = 0 if offset > before else failures + 1
                if failures > self._retries:
                    raise DownloadError(f"{record.filename}: {exc} (gave up after "
                                        f"{self._retries} retries).") from None
                delay = self._backoff * 2 ** max(0, failures - 1)
                self._emit(DownloadEvent(record.key, "retrying", offset, record.size,
                                         message=f"{exc}; retrying in {delay:.1f} s"))
                if job.wake.wait(delay) and job.stop:
                    raise _Stopped() from None
        meter.report(offset, force=True)
        self._verify(record, part, job.hasher)
        part.replace(dest)
        self._complete(job)

    def _complete(self, job: _Job) -> None:
        """The file is whole under its final name: hand it over and finish the job as done."""
        dest = Path(job.record.dest)
        if self._on_complete is not None:
            self._on_complete(dest)
        self._finish(job, "done", done=job.record.size)

    def _check_space(self, dest: Path, need: int) -> None:
        folder = dest.parent
        while not folder.exists():
            folder = folder.parent
        free = self._disk_usage(folder).free
        if need + SPACE_MARGIN > free:
            raise DownloadError(
                f"Not enough disk space for {dest.name}: it needs {human_bytes(need)} more, "
                f"and {folder} has {human_bytes(free)} free. Free some space and try again.")

    def _verify(self, record: DownloadRecord, part: Path, hasher: hashlib._Hash) -> None:
        if record.sha256 and hasher.hexdigest() != record.sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{record.filename} arrived corrupted (its sha256 does not match the Hub's); "
                "the partial file was deleted. Try the download again.")

    def _fetch(self, job: _Job, part: Path, offset: int, meter: _Meter) -> int:
        """Receive from ``offset`` into ``part``, hashing into ``job.hasher``; the new offset."""
        record = job.record
        response, conn = self._open(record, offset)
        try:
            if response.status == 416 and offset >= record.size:
                return offset
            if response.status == 200 and offset:
                # The server ignored Range: start over rather than append the wrong bytes. The
                # hash starts over too (a new object: hashlib's cannot be reset in place), and
                # lives on the job so a retry after this point keeps hashing the new bytes.
                offset = 0
                job.hasher = hashlib.sha256()
                part.write_bytes(b"")
            elif response.status not in (200, 206):
                self._raise_for(record, response.status)
            with part.open("r+b" if part.exists() else "wb", buffering=0) as out:
                out.seek(offset)
                out.truncate()
                with _HashingWriter(out, job.hasher, self._chunk) as sink:
                    while offset < record.size:
                        if job.stop:
                            raise _Stopped()
                        view = sink.take()
                        try:
                            n = response.readinto(view)
                        except (OSError, http.client.HTTPException) as exc:
                            sink.give_back(view)
                            raise _Retry(
                                f"the connection dropped ({type(exc).__name__})") from None
                        if not n:
                            sink.give_back(view)
                            raise _Retry("the connection closed early")
                        sink.put(view, n)
                        offset += n
                        meter.report(offset)
            return offset
        finally:
            conn.close()

    def _open(self, record: DownloadRecord,
              offset: int) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        url = record.url
        origin = urlsplit(url).netloc
        for _ in range(6):
            parts = urlsplit(url)
            cls = (http.client.HTTPSConnection if parts.scheme == "https"
                   else http.client.HTTPConnection)
            conn = cls(parts.netloc, timeout=self._timeout)
            headers = {"Accept-Encoding": "identity", "User-Agent": "hearth"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            token = self._token
            if token and parts.netloc == origin:  # never send the token to a CDN
                headers["Authorization"] = f"Bearer {token}"
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise _Retry(f"could not reach the Hub ({type(exc).__name__})") from None
            if response.status in (301, 302, 303, 307, 308):
                url = urljoin(url, response.getheader("Location", ""))
                conn.close()
                continue
            return response, conn
        raise DownloadError(f"{record.filename}: too many redirects.")

    def _raise_for(self, record: DownloadRecord, status: int) -> None:
        if status in (401, 403):
            raise gated_error(record.repo_id)
        if status == 404:
            raise DownloadError(f"{record.filename} was not found in {record.repo_id} on the Hub.")
        if status >= 500 or status == 429:
            raise _Retry(f"the Hub answered {status}")
        raise DownloadError(f"{record.filename}: the Hub answered {status}.")

    # helpers

    def _part_size(self, dest: Path) -> int:
        try:
            return part_path(dest).stat().st_size
        except FileNotFoundError:
            return 0

    def _save(self, record: DownloadRecord) -> None:
        if self._journal is not None:
            self._journal.save_download(record)

    def _emit(self, event: DownloadEvent) -> None:
        if self._emit_cb is not None:
            try:
                self._emit_cb(event)
            except Exception:  # a listener's bug must not break the transfer
                log.exception("download event listener failed")


class _HashingWriter:
    """Write received blocks on a second thread while the next block arrives and is hashed.

    Hashing and writing on the receiving thread would halve loopback throughput; both release
    the GIL on large buffers, so the two threads really overlap. The blocks are a few
    preallocated buffers that go round between the two threads (``take`` → ``put`` → back to
    the free queue), so no received byte is copied in Python: a copy per block cost about a
    tenth of the throughput on loopback. Leaving the block waits until every received byte is
    on disk and in the hash, so the part file and the hash always agree.
    """

    _BUFFERS = 4

    def __init__(self, out: Any, hasher: hashlib._Hash, chunk: int = CHUNK) -> None:
        self._out, self._hasher = out, hasher
        self._free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(self._BUFFERS):
            self._free.put(memoryview(bytearray(chunk)))
        self._blocks: queue.Queue[tuple[memoryview, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="hearth-download-write",
                                        daemon=True)

    def __enter__(self) -> _HashingWriter:
        self._thread.start()
        return self

    def take(self) -> memoryview:
        """A free buffer to receive into (waits while all of them are queued for writing)."""
        if self._error is not None:
            raise self._error
        return self._free.get()

    def give_back(self, view: memoryview) -> None:
        self._free.put(view)

    def put(self, view: memoryview, n: int) -> None:
        """Hash the first ``n`` bytes of ``view`` (from `take`) here and queue them for writing.

        Hashing here rather than on the writer splits the work evenly: receiving into a buffer
        costs less than writing it, and with hash and write together the writer thread was the
        bottleneck. The hash may run ahead of the file only until ``__exit__`` (which waits for
        the writes); a failed write fails the download, and a retry re-hashes the part file.
        """
        self._hasher.update(view[:n])
        self._blocks.put((view, n))

    def __exit__(self, *exc: object) -> None:
        self._blocks.put(None)
        self._thread.join()
        if self._error is not None:
            # Even over a dropped connection: the hash now holds bytes the file lacks, so this
            # transfer must not be retried with it (the download fails; a new one re-hashes).
            raise self._error

    def _run(self) -> None:
        while (item := self._blocks.get()) is not None:
            view, n = item
            if self._error is None:
                try:
                    block, written = view[:n], 0
                    while written < n:  # an unbuffered write may be partial
                        written += self._out.write(block[written:])
                except BaseException as exc:  # re-raised on the receiving thread
                    self._error = exc
            self._free.put(view)


class _Meter:
    """Turns byte counts into throttled progress events with speed and ETA."""

    def __init__(self, key: str, total: int, start: int,
                 emit: Callable[[DownloadEvent], None]) -> None:
        self.key, self.total, self.emit = key, total, emit
        self.last_time = self.began = time.monotonic()
        self.last_bytes = self.start = start
        self.speed = 0.0

    def report(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_time < _PROGRESS_EVERY:
            return
        span = now - self.last_time
        if span > 0:
            instant = (done - self.last_bytes) / span
            # Smooth so the ETA does not jump about with every chunk.
            self.speed = instant if self.speed == 0 else 0.7 * self.speed + 0.3 * instant
        self.last_time, self.last_bytes = now, done
        eta = (self.total - done) / self.speed if self.speed > 0 else None
        self.emit(DownloadEvent(self.key, "progress", done, self.total, self.speed, eta))


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False
