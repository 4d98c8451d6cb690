"""Turn a download's byte counts into throttled progress events with speed and ETA. No Qt."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.engine.hub.download_records import DownloadEvent, EventKind

PROGRESS_EVERY = 0.1  # seconds between progress events per file


class Meter:
    """Progress events for one transfer; ``kind="verifying"`` counts bytes hashed instead."""

    def __init__(self, key: str, total: int, start: int, emit: Callable[[DownloadEvent], None],
                 kind: EventKind = "progress") -> None:
        self.key, self.total, self.emit, self.kind = key, total, emit, kind
        self.last_time = self.began = time.monotonic()
        self.last_bytes = self.start = start
        self.speed = 0.0

    def report(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_time < PROGRESS_EVERY:
            return
        span = now - self.last_time
        if span > 0:
            instant = (done - self.last_bytes) / span
            # Smooth so the ETA does not jump about with every chunk.
            self.speed = instant if self.speed == 0 else 0.7 * self.speed + 0.3 * instant
        self.last_time, self.last_bytes = now, done
        eta = (self.total - done) / self.speed if self.speed > 0 else None
        self.emit(DownloadEvent(self.key, self.kind, done, self.total, self.speed, eta))
