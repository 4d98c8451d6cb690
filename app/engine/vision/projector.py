"""A vision projector (mmproj) opened with llama.cpp's multimodal library, mtmd.

mtmd pairs a projector file with a loaded text model: it checks that the projector's output
width equals the model's embedding size, and it turns images into embeddings the model decodes
like tokens. The context it returns belongs to the thread that owns the text model's context
(the serving decode loop's): encoding an image and decoding it are one job there.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import mtmd_cpp

from app.engine.inference import llama_log
from app.engine.inference.runtime import LoadError

__all__ = ["Projector", "ProjectorError"]

log = logging.getLogger("hearth.mtmd")
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_recent_errors: collections.deque[str] = collections.deque(maxlen=8)


def _log_line(level: int, line: str) -> None:
    # mtmd narrates every image it encodes at INFO: useful when debugging, noise in a log.
    if level == llama_log.ERROR:
        _recent_errors.append(line)
    log.log(_LEVELS.get(level, logging.DEBUG), "%s", line)


_lines = llama_log.LineCollector(_log_line)


@llama_cpp.llama_log_callback
def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    _lines.feed(level, text)


_install_lock = threading.Lock()
_installed = False


def _install_log() -> None:
    """mtmd and its helpers print to stderr unless given a callback of their own."""
    global _installed
    with _install_lock:
        if not _installed:
            mtmd_cpp.mtmd_log_set(_on_log, ctypes.c_void_p(0))
            mtmd_cpp.mtmd_helper_log_set(_on_log, ctypes.c_void_p(0))
            _installed = True


class ProjectorError(LoadError):
    """The projector could not be opened or used; the message is meant for the user. A
    `LoadError`, so whoever loads a model reports a bad projector the same way."""


class Projector:
    """An open mtmd context for ``path`` on the text model ``model`` (a ``llama_model*``).

    The text model must outlive it: `close` it before freeing the model."""

    def __init__(self, path: str | Path, model: Any, *, n_threads: int, use_gpu: bool) -> None:
        llama_log.install()
        _install_log()
        self.path = str(path)
        params = mtmd_cpp.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.print_timings = False
        params.n_threads = max(1, n_threads)
        _lines.flush()
        _recent_errors.clear()
        ctx = mtmd_cpp.mtmd_init_from_file(self.path.encode(), model, params)
        if not ctx:
            _lines.flush()
            reason = "; ".join(line.strip() for line in _recent_errors) or "unknown reason"
            raise ProjectorError(
                f"Cannot use the vision projector {Path(self.path).name}: {reason}")
        self._ctx = ctx
        self.supports_vision = bool(mtmd_cpp.mtmd_support_vision(ctx))
        self.marker = mtmd_cpp.mtmd_default_marker().decode()
        # Images are prepared (resized, normalised) on the caller's thread, as llama-server
        # does, and encoded on the decode loop's; the lock keeps the two from ever using the
        # context at the same time.
        self.lock = threading.Lock()
        # Recent images as mtmd prepared them, by content (see `prompt._prepared`).
        self.prepared: collections.OrderedDict[bytes, Any] = collections.OrderedDict()

    def eval_image(self, lctx: Any, chunk: Any, n_past: int, seq: int, n_batch: int) -> int:
        """Encode the image ``chunk`` and decode its embeddings into sequence ``seq`` of the
        text model's context ``lctx`` from position ``n_past``; the position after it.

        On the thread that owns ``lctx`` (the decode loop's). ProjectorError on failure."""
        new_n_past = llama_cpp.llama_pos(0)
        with self.lock:
            rc = mtmd_cpp.mtmd_helper_eval_chunk_single(self.handle, lctx, chunk, n_past, seq,
                                                        n_batch, False,
                                                        ctypes.byref(new_n_past))
        if rc != 0:
            _lines.flush()
            detail = "; ".join(_recent_errors) or f"code {rc}"
            _recent_errors.clear()
            raise ProjectorError(f"The image could not be encoded and decoded ({detail}).")
        return int(new_n_past.value)

    @property
    def handle(self) -> Any:
        """The ``mtmd_context*``; ProjectorError once closed."""
        if not self._ctx:
            raise ProjectorError(f"The vision projector {Path(self.path).name} was closed.")
        return self._ctx

    def close(self) -> None:
        self.prepared.clear()
        if self._ctx:
            mtmd_cpp.mtmd_free(self._ctx)
            self._ctx = None

    def __enter__(self) -> Projector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
