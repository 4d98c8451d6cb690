"""Route llama.cpp's own log lines into Hearth's log instead of the terminal.

llama.cpp hands its log over in fragments: a message may arrive in several calls, the later ones
with level CONT ("continues the last message's level"), and a line ends at "\\n". `LineCollector`
turns those fragments into whole lines with their level; the quantize worker uses it too.

The last error lines are kept so a failed load can tell the user what llama.cpp objected to.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import threading
from collections.abc import Callable, Iterator

import llama_cpp

log = logging.getLogger("hearth.llama")
# ggml's levels: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continues the last line's level)
_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING,
           4: logging.ERROR}
ERROR, CONT = 4, 5


class LineCollector:
    """Assembles llama.cpp log fragments into lines and calls ``on_line(level, line)`` for each
    non-blank one (trailing whitespace removed).

    A line is everything up to "\n", however many calls it took: llama.cpp writes one line with
    several calls of a real level too (the quantizer's "[ 1/ 9] name - [..], type = f32, "
    then "converting to q4_0 .. size = …\n"). A line's level is the last non-CONT level seen
    when it ends."""

    def __init__(self, on_line: Callable[[int, str], None]) -> None:
        self._on_line = on_line
        self._level = 2
        self._partial = ""
        self._lock = threading.Lock()

    @property
    def level(self) -> int:
        """The level of the message being assembled (the last non-CONT level seen)."""
        return self._level

    def feed(self, level: int, text: bytes | str) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        with self._lock:
            lines: list[tuple[int, str]] = []
            if level != CONT:
                self._level = level
            self._partial += text
            while "\n" in self._partial:
                line, self._partial = self._partial.split("\n", 1)
                lines.append((self._level, line))
        self._emit(lines)

    def flush(self) -> None:
        """Hand over an unfinished last line (llama.cpp's final message may lack its "\\n")."""
        with self._lock:
            lines = [(self._level, self._partial)] if self._partial else []
            self._partial = ""
        self._emit(lines)

    def _emit(self, lines: list[tuple[int, str]]) -> None:
        for level, line in lines:
            line = line.rstrip()
            if line:
                self._on_line(level, line)


_recent_errors: collections.deque[str] = collections.deque(maxlen=8)
_installed = False
_lock = threading.Lock()


_captured = threading.local()  # .lines: the list `captured_errors` collects into, per thread


def _log_line(level: int, line: str) -> None:
    captured = getattr(_captured, "lines", None)
    if captured is not None:
        # A probe's expected failure: its caller reads these, the log needs no alarm.
        if level == ERROR:
            captured.append(line)
        log.debug("%s", line)
        return
    if level == ERROR:
        _recent_errors.append(line)
    log.log(_LEVELS.get(level, logging.DEBUG), "%s", line)


_lines = LineCollector(_log_line)


@llama_cpp.llama_log_callback
def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    _lines.feed(level, text)


def install() -> None:
    """Install once per process; safe to call from any thread."""
    global _installed
    with _lock:
        if not _installed:
            llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _installed = True


def take_recent_errors() -> list[str]:
    _lines.flush()
    lines = list(_recent_errors)
    _recent_errors.clear()
    return lines


@contextlib.contextmanager
def captured_errors() -> Iterator[list[str]]:
    """Collect the error lines llama.cpp logs on this thread inside the block into the yielded
    list instead of the shared recent errors (and log them at debug level only), so a probe on
    one thread neither reads nor hides the errors of a load on another."""
    lines: list[str] = []
    outer = getattr(_captured, "lines", None)
    _captured.lines = lines
    try:
        yield lines
    finally:
        _captured.lines = outer
