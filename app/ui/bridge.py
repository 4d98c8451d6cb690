"""The one place where engine events cross into the GUI thread.

The engine host calls `_on_event` on its inference thread. Events are queued in a deque. The
first token after a drain arms a one-shot GUI timer; when it fires, `TICK_MS` later, the deque is
drained and consecutive tokens of a reply are merged into one `tokens` signal, so the chat view
appends text ten times a second rather than once per token, and nothing wakes the GUI while no
reply streams. On a two-core machine each GUI wake-up takes a core from the decode threads, which
wait for each other. Any other event wakes the drain at once through a queued signal. Order is
preserved because everything goes through the same deque.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from app.engine.inference.events import (
    Done,
    EngineEvent,
    Failed,
    Loaded,
    LoadProgress,
    MemoryCheck,
    MemoryMeasured,
    PromptInfo,
    Token,
    Unloaded,
)
from app.engine.serving.host import EngineHost
from app.engine.serving.pool import ModelPool
from app.engine.types import ChatMessage, LoadSettings, Sampling

TICK_MS = 100


class EngineBridge(QObject):
    loadProgress = Signal(int, float)  # job, fraction
    loaded = Signal(int, str, object, int)  # job, path, ModelInfo, n_ctx
    unloaded = Signal(int, str)  # job, path
    promptInfo = Signal(int, int, int, int)  # job, prompt tokens, n_ctx, dropped messages
    tokens = Signal(int, str)  # job, text since the last tick
    done = Signal(int, str, object)  # job, full text, GenerationStats
    # job, tuple[ToolCall, ...]: the calls a reply asked for, just before its `done`
    toolCalls = Signal(int, object)
    failed = Signal(int, str, str)  # job, message, kind
    # A MemoryCheck: once after a load, again after that model's first reply. Separate from
    # `loaded` so the many slots connected to it keep their signature.
    memoryChecked = Signal(object)
    _wake = Signal()
    _arm = Signal()

    def __init__(self, parent: QObject | None = None, host: EngineHost | None = None,
                 pool: ModelPool | None = None,
                 model_key: Callable[[str], str] | None = None) -> None:
        """``pool``: the serving pool the window shares with the API server (the host makes
        one of its own without it); ``model_key``: a loaded file's name in it (the API's
        model id), so the server and the Developer page call the chat's model what clients
        call it."""
        super().__init__(parent)
        self._pending: collections.deque[EngineEvent] = collections.deque()
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)
        self._arm.connect(self._timer.start, Qt.ConnectionType.QueuedConnection)
        self._armed = False  # a tick is due; set on the engine thread, cleared on the GUI's
        self.host = host or EngineHost(self._on_event, pool, model_key)
        self.pool: ModelPool = self.host.pool
        self.loaded_path: str | None = None
        self.loaded_info = None
        self.n_ctx = 0
        self.memory_check: MemoryCheck | None = None  # the loaded model's latest
        self.loaded_projector: str | None = None  # the loaded model's vision projector
        self._projectors: dict[int, str | None] = {}  # load job → its projector

    # -- requests (GUI thread) -----------------------------------------------------------------
    def load(self, path: str | Path, settings: LoadSettings | None = None,
             projector: str | Path | None = None) -> int:
        """``projector``: the model's vision projector (mmproj), for images in the chat."""
        job = self.host.load(path, settings, projector=projector)
        self._projectors[job] = str(projector) if projector is not None else None
        return job

    def unload(self) -> int:
        return self.host.unload()

    def chat(self, messages: Sequence[ChatMessage], sampling: Sampling,
             policy: str = "truncate_oldest", schema: dict[str, Any] | None = None,
             tools: Sequence[dict[str, Any]] = (), tool_choice: str = "auto",
             continue_from: str = "") -> int:
        """``schema``: structured output; the host turns it into a grammar on its thread.
        ``tools``: OpenAI function tools the reply may call (`toolCalls` reports the calls).
        ``continue_from``: Continue, the reply's text so far (see `EngineHost.chat`)."""
        return self.host.chat(messages, sampling, policy, schema,  # type: ignore[arg-type]
                              tools, tool_choice, continue_from)  # type: ignore[arg-type]

    def cancel(self, job_id: int) -> None:
        self.host.cancel(job_id)

    def shutdown(self) -> None:
        self._timer.stop()
        self.host.shutdown()
        self._drain()

    # -- engine thread -------------------------------------------------------------------------
    def _on_event(self, event: EngineEvent) -> None:
        self._pending.append(event)
        if not isinstance(event, Token):
            self._wake.emit()
        elif not self._armed:
            self._armed = True
            self._arm.emit()

    # -- GUI thread ----------------------------------------------------------------------------
    def _on_tick(self) -> None:
        # Cleared before draining: a token queued meanwhile arms the next tick, so none is left.
        self._armed = False
        self._drain()

    def _drain(self) -> None:
        job, parts = 0, []
        while self._pending:
            event = self._pending.popleft()
            if isinstance(event, Token):
                if parts and event.job_id != job:
                    self.tokens.emit(job, "".join(parts))
                    parts = []
                job = event.job_id
                parts.append(event.text)
                continue
            if parts:
                self.tokens.emit(job, "".join(parts))
                parts = []
            self._dispatch(event)
        if parts:
            self.tokens.emit(job, "".join(parts))

    def _dispatch(self, event: EngineEvent) -> None:
        if isinstance(event, LoadProgress):
            self.loadProgress.emit(event.job_id, event.fraction)
        elif isinstance(event, Loaded):
            self.loaded_path, self.loaded_info, self.n_ctx = event.path, event.info, event.n_ctx
            self.memory_check = event.memory
            self.loaded_projector = self._projectors.pop(event.job_id, None)
            self.loaded.emit(event.job_id, event.path, event.info, event.n_ctx)
            if event.memory is not None:
                self.memoryChecked.emit(event.memory)
        elif isinstance(event, MemoryMeasured):
            self.memory_check = event.check
            self.memoryChecked.emit(event.check)
        elif isinstance(event, Unloaded):
            self.loaded_path, self.loaded_info, self.n_ctx = None, None, 0
            self.memory_check = None
            self.loaded_projector = None
            self.unloaded.emit(event.job_id, event.path)
        elif isinstance(event, PromptInfo):
            self.promptInfo.emit(event.job_id, event.prompt_tokens, event.n_ctx,
                                 event.dropped_messages)
        elif isinstance(event, Done):
            if event.tool_calls:
                self.toolCalls.emit(event.job_id, event.tool_calls)
            self.done.emit(event.job_id, event.text, event.stats)
        elif isinstance(event, Failed):
            self._projectors.pop(event.job_id, None)
            self.failed.emit(event.job_id, event.message, event.kind)
