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
from collections.abc import Callable
from dataclasses import dataclass
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


_NO_ABORT = llama_cpp.ggml_abort_callback()  # NULL: llama.cpp's default, no callback
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


# The encoder's graph is checked for a cancel every this many nodes: ggml computes the nodes
# between two checks in one go, so checking each one would cost a sync per node on a GPU.
CHECK_EVERY_NODES = 16


@dataclass
class FeedReport:
    """How far the last image fed got: what Stop cut short, for the log and for tests."""

    encoder_nodes: int = 0  # encoder graph nodes computed (all of them unless cut)
    decoded_batches: int = 0  # batches of its embeddings decoded into the text model
    cancelled: bool = False


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
        # Stop while an image is encoded: mtmd has no abort of its own, but it hands this
        # callback to the encoder's scheduler, which asks it before each graph node and stops
        # the graph when it answers False after one (see `_on_node`). CPU only: there an image
        # takes seconds to encode, and each call (one per node) takes the GIL; on a GPU it
        # takes milliseconds, and the checks would split the graph into synchronised pieces.
        self._cancelled: Callable[[], bool] | None = None
        self.last_feed = FeedReport()
        self._on_node_c = llama_cpp.ggml_backend_sched_eval_callback(self._on_node)
        self._on_abort_c = llama_cpp.ggml_abort_callback(self._on_abort)
        self._on_batch_c = mtmd_cpp.mtmd_helper_post_decode_callback(self._on_batch)
        if not use_gpu:
            params.cb_eval = self._on_node_c
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

    def eval_image(self, lctx: Any, chunk: Any, n_past: int, seq: int, n_batch: int,
                   cancelled: Callable[[], bool] | None = None) -> int | None:
        """Encode the image ``chunk`` and decode its embeddings into sequence ``seq`` of the
        text model's context ``lctx`` from position ``n_past``; the position after it, or None
        when ``cancelled()`` turned true on the way (the sequence may then hold part of the
        image from ``n_past`` on: the caller removes it).

        On the thread that owns ``lctx`` (the decode loop's). ProjectorError on failure.
        ``cancelled`` is asked between graph nodes of the encoder and of each decode (it is
        called from llama.cpp's threads: it must be quick and never raise)."""
        new_n_past = llama_cpp.llama_pos(0)
        with self.lock:
            self.last_feed = FeedReport()
            self._cancelled = cancelled
            _recent_errors.clear()  # a Stop's "post-decode callback failed" is no reason now
            try:
                if self._stop_asked():
                    return None
                rc = mtmd_cpp.mtmd_encode_chunk(self.handle, chunk)
                if self._stop_asked():  # a cut encoder leaves half-computed embeddings
                    return None
                if rc != 0:
                    raise self._error(f"code {rc}")
                embd = mtmd_cpp.mtmd_get_output_embd(self.handle)
                # Only while this image is decoded: llama.cpp calls it for every graph node of
                # every decode, and each call takes the GIL.
                llama_cpp.llama_set_abort_callback(lctx, self._on_abort_c, None)
                try:
                    rc = mtmd_cpp.mtmd_helper_decode_image_chunk(
                        self.handle, lctx, chunk, embd, n_past, seq, n_batch,
                        ctypes.byref(new_n_past), self._on_batch_c, None)
                finally:
                    llama_cpp.llama_set_abort_callback(lctx, _NO_ABORT, None)
                if self._stop_asked():
                    return None
            finally:
                self._cancelled = None
        if rc != 0:
            raise self._error(f"code {rc}")
        return int(new_n_past.value)

    def _stop_asked(self) -> bool:
        check = self._cancelled
        stop = check is not None and check()
        self.last_feed.cancelled |= stop
        return stop

    def _on_node(self, _tensor: Any, ask: bool, _user: Any) -> bool:
        """ggml's scheduler: with ``ask``, whether to stop after this node (to be asked
        again); after it, False stops the graph."""
        try:
            if ask:
                self.last_feed.encoder_nodes += 1
                return self._cancelled is not None \
                    and self.last_feed.encoder_nodes % CHECK_EVERY_NODES == 0
            return not self._stop_asked()
        except Exception:  # noqa: BLE001 - an exception must not unwind through C
            return True

    def _on_abort(self, _user: Any) -> bool:
        try:
            return self._stop_asked()
        except Exception:  # noqa: BLE001 - an exception must not unwind through C
            return False

    def _on_batch(self, _batch: Any, _user: Any) -> int:
        """After each batch of embeddings is decoded; non-zero stops before the next."""
        self.last_feed.decoded_batches += 1
        try:
            return 1 if self._stop_asked() else 0
        except Exception:  # noqa: BLE001 - an exception must not unwind through C
            return 0

    @staticmethod
    def _error(fallback: str) -> ProjectorError:
        _lines.flush()
        detail = "; ".join(_recent_errors) or fallback
        _recent_errors.clear()
        return ProjectorError(f"The image could not be encoded and decoded ({detail}).")

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
