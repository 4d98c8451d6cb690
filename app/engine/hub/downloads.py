"""The download manager: a queue of Hub files fetched in parallel, resumable, verified. No Qt.

Each file is written to ``<dest>.part`` and hashed while it arrives; only when the sha256 matches
the Hub's LFS hash, and the bytes are flushed to disk, is it renamed to its final name. A file
found already complete, or a part whose running hash was lost with its process, is hashed again
with ``verifying`` progress. A file the Hub gives no sha256 is checked by size, and resumed only
from bytes of the same revision and ETag (``part_origin``). A dropped connection, a pause, or a
killed process all resume with an HTTP ``Range`` request from the bytes already on disk; an
answer for another range is refused and the file starts over. A disk that fills pauses the job.
Each running job holds its part file's lock (``download_lock``), so another Hearth process
asking for the same file is told it is busy instead of writing into it. State lives in a
``DownloadJournal`` (the Store, wired in ``app.services.downloaded``), so the engine does not
depend on the data layer. Events go to one callback from the worker threads; the GUI turns them
into queued signals.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from app.engine.hub.api import FileTarget, HubError
from app.engine.hub.download_lock import remove_part
from app.engine.hub.download_records import (
    BUSY_ELSEWHERE,
    DiskUsage,
    DownloadError,
    DownloadEvent,
    DownloadJournal,
    DownloadRecord,
    EventKind,
    Status,
    download_key,
    part_path,
    target_path,
)
from app.engine.hub.download_transfer import (
    SPACE_MARGIN,
    Job,
    Stopped,
    Transfer,
    TransferOptions,
    has_size,
    part_size,
)
from app.engine.hub.download_verify import disk_full_message
from app.engine.hub.hashing_writer import CHUNK
from app.engine.hub.part_origin import drop_origin

__all__ = ["BUSY_ELSEWHERE", "CHUNK", "SPACE_MARGIN", "DiskUsage", "DownloadError",
           "DownloadEvent", "DownloadJournal", "DownloadManager", "DownloadRecord", "EventKind",
           "Status", "download_key", "part_path", "target_path"]

log = logging.getLogger(__name__)

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


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
        self._options = TransferOptions(lambda: self._token, disk_usage, retries, backoff,
                                        chunk_size, timeout)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._queue: list[Job] = []
        # Job objects, not keys: a finished job's thread may still be leaving while a new job
        # for the same key starts, and each must count (and be paused by close) on its own.
        self._active: set[Job] = set()

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
            # Probably downloaded already (by an earlier run or another app using the folder):
            # check it at once on a worker, outside the queue, instead of fetching it again.
            # The worker decides under the part file's lock; this is only where it queues.
            complete = not part.exists() and has_size(dest, target.size)
            job = Job(record, earlier or (job.record if job is not None else None))
            self._jobs[key] = job
            if complete:
                self._active.add(job)
            else:
                self._queue.append(job)
        if complete:
            self._emit(DownloadEvent(key, "queued", 0, target.size))
            self._start(job)
            return key
        self._save(record)
        self._emit(DownloadEvent(key, "queued", part_size(dest), target.size))
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
            new = Job(replace(job.record, status="queued", error=None), job.record)
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

    def _decide_stop(self, job: Job, how: Literal["pause", "cancel"]) -> Status | None:
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

    def _start(self, job: Job) -> None:
        # "hearth-" lets the test plugin's leak check see a download thread left running.
        threading.Thread(target=self._run, args=(job,),
                         name=f"hearth-download {job.record.key}", daemon=True).start()

    def _finish(self, job: Job, status: Status, message: str = "", done: int = 0,
                save: bool = True) -> None:
        with self._lock:
            job.record = replace(job.record, status=status, error=message or None)
        dest = Path(job.record.dest)
        part = part_path(dest)
        if status == "cancelled":
            if job.lock.held:
                part.unlink(missing_ok=True)
                drop_origin(part)
            else:  # a queued or ended job: the part may be another process's, being written
                remove_part(part)
        if status in ("cancelled", "done"):
            if self._journal:
                self._journal.delete_download(job.record.key)
        elif save:
            self._save(job.record)
        job.lock.release()  # before `finished`: a resume must find the part file free
        kind: EventKind = status  # type: ignore[assignment]
        self._emit(DownloadEvent(job.record.key, kind, done or part_size(dest),
                                 job.record.size, message=message, path=str(dest)))
        job.finished.set()

    def _run(self, job: Job) -> None:
        key = job.record.key
        try:
            Path(job.record.dest).parent.mkdir(parents=True, exist_ok=True)
            if not job.lock.try_acquire():
                # Another process is writing this file; its journal row is left as it is.
                self._finish(job, "paused", BUSY_ELSEWHERE, save=False)
                return
            with self._lock:
                job.record = replace(job.record, status="running")
            self._save(job.record)
            Transfer(job, self._options, self._emit).run()
            self._complete(job)
        except Stopped:
            self._finish(job, "paused" if job.stop == "pause" else "cancelled")
        except (DownloadError, HubError) as exc:
            self._finish(job, "failed", str(exc))
        except OSError as exc:
            if exc.errno not in _DISK_FULL:
                log.exception("download %s failed", key)
                self._finish(job, "failed", f"The download failed ({exc}).")
            else:  # resumable once there is room: the bytes on disk are a correct prefix
                missing = job.record.size - part_size(Path(job.record.dest))
                self._finish(job, "paused", disk_full_message(missing))
        except Exception as exc:  # a bug must end this download, never the app
            log.exception("download %s failed", key)
            self._finish(job, "failed", f"The download failed unexpectedly ({exc}).")
        finally:
            job.lock.release()  # normally released by `_finish` already
            with self._lock:
                self._active.discard(job)
            self._pump()

    def _complete(self, job: Job) -> None:
        """The file is whole under its final name: hand it over and finish the job as done."""
        dest = Path(job.record.dest)
        if self._on_complete is not None:
            self._on_complete(dest)
        self._finish(job, "done", done=job.record.size)

    # helpers

    def _save(self, record: DownloadRecord) -> None:
        if self._journal is not None:
            self._journal.save_download(record)

    def _emit(self, event: DownloadEvent) -> None:
        if self._emit_cb is not None:
            try:
                self._emit_cb(event)
            except Exception:  # a listener's bug must not break the transfer
                log.exception("download event listener failed")

