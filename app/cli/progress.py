"""A one-line terminal progress bar for downloads (used by `hearth get`)."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from app.engine.hub.download_records import DownloadEvent
from app.engine.units import human_bytes


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    clock = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{hours}:{clock}" if hours else clock


def progress_line(name: str, event: DownloadEvent, width: int = 80) -> str:
    """``name [#####.....]  42%  12.3 MB/29.0 MB  5.1 MB/s  00:03`` fitted to ``width``."""
    fraction = event.done / event.total if event.total else 0.0
    tail = (f" {fraction:4.0%}  {human_bytes(event.done)}/{human_bytes(event.total)}  "
            f"{human_bytes(int(event.speed))}/s  {_eta(event.eta)}")
    label = name if len(name) <= 28 else "…" + name[-27:]
    bar_width = max(10, width - len(label) - len(tail) - 4)
    filled = int(bar_width * fraction)
    return f"{label} [{'#' * filled}{'.' * (bar_width - filled)}]{tail}"


class TerminalProgress:
    """Prints events as a redrawn line on a terminal, or as occasional lines in a log/pipe."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_percent: dict[str, int] = {}

    def __call__(self, event: DownloadEvent) -> None:
        name = event.key.rsplit("/", 1)[-1]
        if event.kind == "verifying":
            percent = int(100 * event.done / event.total) if event.total else 100
            if self.tty:
                self.stream.write(f"\r{name}: verifying sha256 {percent:3d}%")
            elif percent // 25 != self._last_percent.get("verify " + event.key, -1) // 25:
                self._last_percent["verify " + event.key] = percent
                self.stream.write(f"{name}: verifying sha256 {percent}%\n")
        elif event.kind == "progress":
            if self.tty:
                width = shutil.get_terminal_size().columns - 1
                self.stream.write("\r" + progress_line(name, event, width))
            else:
                percent = int(100 * event.done / event.total) if event.total else 0
                # A pipe gets a line per 10 %, not a flood of carriage returns.
                if percent // 10 != self._last_percent.get(event.key, -1) // 10:
                    self._last_percent[event.key] = percent
                    self.stream.write(progress_line(name, event) + "\n")
        elif event.kind in ("done", "failed", "paused", "cancelled", "retrying"):
            end = "\n" if self.tty else ""
            paused = f"{name}: paused" + (f" ({event.message})" if event.message else "")
            text = {"done": f"{name}: done, sha256 verified → {event.path}",
                    "paused": paused, "cancelled": f"{name}: cancelled"}.get(
                        event.kind, f"{name}: {event.message}")
            self.stream.write(end + text + "\n")
        self.stream.flush()
