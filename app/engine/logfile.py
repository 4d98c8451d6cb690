"""Hearth's log file: details of every error a user sees as one sentence go here.

Shared by the GUI and the CLI. Attaching the handler to the root logger also keeps llama.cpp's
warnings (routed into logging by `llama_log`) out of the terminal chat.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_NAME = "hearth.log"
_MAX_BYTES = 2_000_000
_BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


class LogFile:
    """A rotating ``hearth.log`` attached to the root logger until `close()`.

    Closing detaches it and restores the root level, so tests that open many data folders in one
    process neither leak file handles nor leave logging louder than they found it.
    """

    def __init__(self, logs_dir: Path, level: int = logging.INFO) -> None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.path = (logs_dir / LOG_NAME).absolute()
        self._root = logging.getLogger()
        self._old_level = self._root.level
        self._handler = RotatingFileHandler(
            self.path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
        )
        self._handler.setLevel(level)
        self._handler.setFormatter(logging.Formatter(_FORMAT))
        self._root.addHandler(self._handler)
        if self._root.level == logging.NOTSET or self._root.level > level:
            self._root.setLevel(level)

    def close(self) -> None:
        if self._handler in self._root.handlers:
            self._root.removeHandler(self._handler)
            self._root.setLevel(self._old_level)
        self._handler.close()
