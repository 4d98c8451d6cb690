"""Route llama.cpp's own log lines into Hearth's log instead of the terminal.

The last error lines are kept so a failed load can tell the user what llama.cpp objected to.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading

import llama_cpp

log = logging.getLogger("hearth.llama")
# ggml's levels: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continues the last line's level)
_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING,
           4: logging.ERROR}
_ERROR, _CONT = 4, 5
_recent_errors: collections.deque[str] = collections.deque(maxlen=8)
_installed = False
_last_level = 2
_lock = threading.Lock()


@llama_cpp.llama_log_callback
def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    line = text.decode("utf-8", errors="replace").rstrip()
    if not line:
        return
    global _last_level
    if level != _CONT:
        _last_level = level
    if _last_level == _ERROR:
        _recent_errors.append(line)
    log.log(_LEVELS.get(_last_level, logging.DEBUG), "%s", line)


def install() -> None:
    """Install once per process; safe to call from any thread."""
    global _installed
    with _lock:
        if not _installed:
            llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _installed = True


def take_recent_errors() -> list[str]:
    lines = list(_recent_errors)
    _recent_errors.clear()
    return lines
