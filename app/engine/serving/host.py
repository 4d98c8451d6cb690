"""The engine host: the window's (and `hearth chat`'s) model, on the shared serving pool.

GUI, CLI and tests submit jobs here and receive `app.engine.inference.events` through one
callback. Jobs run in order on the host's thread: a load goes through the `ModelPool` (so the
API server finds the same model loaded, one copy), and a reply is a sequence in that model's
decode loop, in the slot kept for interactive work, decoded beside any API requests. Cancelling
a reply stops it within one decode step."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

from app.engine.gguf.info import GGUFError
from app.engine.inference.context_window import (
    ContextOverflow,
    OverflowPolicy,
    fit_conversation,
    reply_reserve,
)
from app.engine.inference.events import (
    Done,
    EngineEvent,
    Failed,
    Loaded,
    LoadProgress,
    MemoryCheck,
    MemoryMeasured,
    PromptInfo,
    Unloaded,
)
from app.engine.inference.prompt_format import PromptCancelled, PromptFormatError
from app.engine.inference.reasoning import thinking_open
from app.engine.inference.runtime import LoadError, ModelUnloaded
from app.engine.serving.chat_tools import ReplyReader, WindowToolChoice, tool_plan
from app.engine.serving.jobs import SequenceJob
from app.engine.serving.loaded_model import LoadedModel
from app.engine.serving.pool import ModelPool, projector_file_bytes
from app.engine.serving.reply_relay import ReplyRelay
from app.engine.sizing.hardware import offload_gpus, vram_used
from app.engine.sizing.memory_estimate import estimate_memory
from app.engine.structured.schema_grammar import schema_to_grammar
from app.engine.types import ChatMessage, GenerationStats, LoadSettings, Sampling

log = logging.getLogger("hearth.engine")
CANCEL_POLL_S = 0.02  # how often a running reply checks for Stop


@dataclass(frozen=True)
class _Load:
    job_id: int
    path: str
    settings: LoadSettings
    projector: str | None = None  # a vision model's projector (mmproj)


@dataclass(frozen=True)
class _Unload:
    job_id: int


@dataclass(frozen=True)
class _Chat:
    job_id: int
    messages: tuple[ChatMessage, ...]
    sampling: Sampling
    policy: OverflowPolicy
    schema: dict[str, Any] | None = None  # structured output: the reply follows this schema
    tools: tuple[dict[str, Any], ...] = ()  # OpenAI function tools the model may call
    tool_choice: WindowToolChoice = "auto"  # "required": the reply must be one call
    continue_from: str = ""  # Continue: the partial reply the assistant turn starts with


_STOP = object()
# The Failed kind of an unexpected error in each job type (an unload counts as model loading),
# so a load that breaks in an unforeseen way is still reported as a failed load.
_JOB_KINDS: dict[type, str] = {_Load: "load", _Unload: "load", _Chat: "generate"}


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _vram_used() -> int | None:
    """Used VRAM over all GPUs, or None where there is no NVML or no GPU."""
    try:
        return vram_used()
    except Exception:  # a broken NVML must never fail a load
        log.debug("VRAM reading failed", exc_info=True)
        return None


@dataclass
class _Baseline:
    """Memory just before the current model loaded, for measuring it again after a reply."""

    check: MemoryCheck
    rss: int
    vram: int | None


class EngineHost:
    def __init__(self, on_event: Callable[[EngineEvent], None],
                 pool: ModelPool | None = None,
                 model_key: Callable[[str], str] | None = None) -> None:
        """``pool``: shared with the API server; without one the host makes (and owns) one.
        ``model_key``: a file's name in the pool (the API's model id), looked up on the host's
        thread; without it the path is the name."""
        self._emit = on_event
        self.pool = pool or ModelPool()
        self._owns_pool = pool is None
        self._model_key = model_key or str
        self._jobs: queue.Queue = queue.Queue()
        self._ids = itertools.count(1)
        self._cancelled: set[int] = set()
        self._runtime: LoadedModel | None = None  # the model the window chats with
        self._baseline: _Baseline | None = None  # set until the new model's first reply
        self._thread = threading.Thread(target=self._run, name="hearth-inference", daemon=True)
        self._thread.start()

    # -- API for any thread --------------------------------------------------------------------
    def load(self, path: str | Path, settings: LoadSettings | None = None,
             projector: str | Path | None = None) -> int:
        """Load the model at ``path`` for the chat; ``projector``: its vision projector."""
        mmproj = str(projector) if projector is not None else None
        return self._submit(lambda i: _Load(i, str(path), settings or LoadSettings(), mmproj))

    def unload(self) -> int:
        return self._submit(_Unload)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        sampling: Sampling | None = None,
        policy: OverflowPolicy = "truncate_oldest",
        schema: dict[str, Any] | None = None,
        tools: Sequence[dict[str, Any]] = (),
        tool_choice: WindowToolChoice = "auto",
        continue_from: str = "",
    ) -> int:
        """A reply to `messages`; with `schema` (structured output) it is JSON that follows it,
        constrained by a grammar built on the host's thread (never the caller's). With
        `tools`, the reply may call them: its `Done` carries the calls, and its tokens are
        only the visible text. ``continue_from``: Continue a reply that stopped; the prompt is
        `messages` ready for the reply, then this text as plain text (never control tokens),
        so the model goes on from it and the decode loop's cached prefix is reused."""
        return self._submit(
            lambda i: _Chat(i, tuple(messages), sampling or Sampling(), policy, schema,
                            tuple(tools), tool_choice, continue_from))

    def cancel(self, job_id: int) -> None:
        """Stop that job: a running reply ends within one token, a queued job never starts."""
        self._cancelled.add(job_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        for job_id in range(1, next(self._ids)):
            self._cancelled.add(job_id)
        self._jobs.put(_STOP)
        self._thread.join(timeout)

    @property
    def loaded_path(self) -> str | None:
        rt = self._runtime
        return rt.path if rt else None

    def _submit(self, make: Callable[[int], object]) -> int:
        job = make(next(self._ids))
        self._jobs.put(job)
        return job.job_id  # type: ignore[attr-defined]

    # -- the inference thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                break
            try:
                if isinstance(job, _Load):
                    self._do_load(job)
                elif isinstance(job, _Unload):
                    self._do_unload(job)
                elif isinstance(job, _Chat):
                    self._do_chat(job)
            except Exception as exc:  # a bug must not kill the thread that owns the model
                log.exception("engine job failed")
                kind = _JOB_KINDS.get(type(job), "generate")
                self._emit(Failed(job.job_id, f"Unexpected engine error: {exc}", kind))
            finally:
                self._cancelled.discard(job.job_id)
        self._runtime = None
        if self._owns_pool:
            self.pool.shutdown()

    def _do_load(self, job: _Load) -> None:
        last = [-1.0]

        def progress(fraction: float) -> bool:
            if fraction - last[0] >= 0.02 or fraction >= 1.0:
                last[0] = fraction
                self._emit(LoadProgress(job.job_id, fraction))
            return job.job_id not in self._cancelled

        started = time.perf_counter()
        rss_before, vram_before = _rss(), _vram_used()
        try:
            # The new model loads beside the old one, so a failed load leaves the old in place
            # (with mmap the old weights are page cache the OS can reclaim).
            key = self._model_key(job.path)
            same = self.pool.get(key)
            if same is not None and (same.settings != job.settings
                                     or same.projector_path != job.projector):
                # Loaded with other settings (a new context length, say): load it afresh.
                if same is self._runtime:
                    self._runtime = None
                self.pool.unload(key)
            runtime = self.pool.load(key, job.path, job.settings, progress=progress,
                                     cancelled=lambda: job.job_id in self._cancelled,
                                     projector=job.projector)
        except (GGUFError, LoadError) as exc:
            reason = "Loading was cancelled." if job.job_id in self._cancelled else str(exc)
            self._emit(Failed(job.job_id, reason, "load"))
            return
        seconds = time.perf_counter() - started
        # Measured before the old model is closed, so its release does not hide the new growth.
        rss_after, vram_after = _rss(), _vram_used()
        check = self._memory_check(runtime, job.settings, rss_after - rss_before,
                                   _growth(vram_before, vram_after))
        if self._runtime is not None and self._runtime is not runtime:
            self.pool.unload(self._runtime.key)
            # What closing the old model gave back leaves the baseline, so the after-reply
            # figure still counts only the new model.
            rss_before -= max(0, rss_after - _rss())
            vram_now = _vram_used()
            if vram_before is not None and vram_after is not None and vram_now is not None:
                vram_before -= max(0, vram_after - vram_now)
        self._runtime = runtime
        self._baseline = _Baseline(check, rss_before, vram_before) if check else None
        self._emit(Loaded(job.job_id, runtime.path, runtime.info, runtime.n_ctx, seconds, check))

    def _memory_check(self, runtime: LoadedModel, settings: LoadSettings, ram_growth: int,
                      vram_growth: int | None) -> MemoryCheck | None:
        """The estimate for the settings the model was loaded with, beside measured growth."""
        try:
            est = estimate_memory(runtime.info, settings, offload_gpus(),
                                  sequences=runtime.parallel + 1,
                                  projector_bytes=projector_file_bytes(runtime.projector_path))
        except Exception:  # the check is informative; it must never fail a load
            log.warning("memory estimate after load failed", exc_info=True)
            return None
        return MemoryCheck(
            model_path=runtime.path,
            n_ctx=runtime.n_ctx,
            kv_type=settings.kv_cache_type,
            gpu_layers=est.layers_on_gpu,
            estimated_ram=est.ram_bytes,
            actual_ram_growth=ram_growth,
            estimated_vram=sum(est.vram_bytes) if vram_growth is not None else None,
            actual_vram_growth=vram_growth,
        )

    def _measure_after_reply(self, job_id: int) -> None:
        """After the first reply of a freshly loaded model, report its memory again: only now
        are the weights read and the KV cache and compute buffers touched."""
        base, self._baseline = self._baseline, None
        if base is None:
            return
        check = replace(base.check, actual_ram_growth=_rss() - base.rss,
                        actual_vram_growth=_growth(base.vram, _vram_used()),
                        after_reply=True)
        self._emit(MemoryMeasured(job_id, check))

    def _do_unload(self, job: _Unload) -> None:
        if self._runtime is None:
            return
        path = self._runtime.path
        self.pool.unload(self._runtime.key)
        self._runtime = None
        self._baseline = None
        self._emit(Unloaded(job.job_id, path))

    def _do_chat(self, job: _Chat) -> None:
        try:
            self._chat(job)
        except ModelUnloaded as exc:  # unloaded under the window (the API, a TTL): let it go
            path = self._runtime.path if self._runtime else ""
            self._runtime = self._baseline = None
            self._emit(Failed(job.job_id, str(exc), "generate"))
            self._emit(Unloaded(job.job_id, path))

    def _chat(self, job: _Chat) -> None:
        model = self._runtime
        if job.job_id in self._cancelled:
            self._emit(Done(job.job_id, "", GenerationStats(stop_reason="cancelled")))
            return
        if model is None:
            self._emit(Failed(job.job_id, "No model is loaded. Pick a model first.", "generate"))
            return
        grammar = None
        if job.schema is not None:
            try:
                grammar = schema_to_grammar(job.schema)
            except ValueError as exc:  # InvalidSchema: unsupported, too big, malformed
                self._emit(Failed(job.job_id, f"Structured output: {exc}", "generate"))
                return
        family = ""
        if job.tools:
            try:
                family, tool_grammar = tool_plan(job.tools, job.tool_choice, model.tool_family)
            except ValueError as exc:  # a tool whose parameters cannot constrain a call
                self._emit(Failed(job.job_id, f"Tools: {exc}", "generate"))
                return
            grammar = tool_grammar or grammar
        offered = list(job.tools) or None
        job_cancelled = lambda: job.job_id in self._cancelled  # noqa: E731
        prompts = {}

        def tokens(messages: Sequence[ChatMessage]) -> list[int]:
            prompt = prompts[len(messages)] = model.chat_prompt(messages, job_cancelled,
                                                                tools=offered)
            if not job.continue_from:
                return prompt.tokens
            return prompt.tokens + model.continuation_tokens(prompt.tokens, job.continue_from)

        try:
            fitted = fit_conversation(job.messages, tokens, model.n_ctx,
                                      reply_reserve(model.n_ctx, job.sampling.reply_limit),
                                      job.policy)
        except ContextOverflow as exc:
            self._emit(Failed(job.job_id, str(exc), "context"))
            return
        except PromptCancelled:  # Stop pressed while the template was still rendering
            self._emit(Done(job.job_id, "", GenerationStats(stop_reason="cancelled")))
            return
        except PromptFormatError as exc:  # a template that cannot render this conversation
            self._emit(Failed(job.job_id, str(exc), "generate"))
            return
        self._emit(PromptInfo(job.job_id, len(fitted.tokens), model.n_ctx, fitted.dropped))
        sampling = job.sampling
        if sampling.seed < 0 <= model.settings.seed:
            sampling = replace(sampling, seed=model.settings.seed)
        prompt = prompts[len(fitted.messages)]
        reader = ReplyReader(family, prompt.opens_thinking) if job.tools else None
        relay = ReplyRelay(job.job_id, self._emit, reader, opened=prompt.opens_thinking,
                           in_thinking=thinking_open(job.continue_from, prompt.opens_thinking))
        ended = relay.ended
        handle = model.submit(
            SequenceJob(fitted.tokens, sampling, stop=prompt.stop, interactive=True,
                        grammar=grammar, images=prompt.images,
                        control_text=reader.control_text if reader else frozenset()), relay)
        while not handle.wait(CANCEL_POLL_S):
            if job.job_id in self._cancelled:
                handle.cancel()
        if ended:
            self._emit(ended[0])
            if isinstance(ended[0], Done) and ended[0].stats.generated_tokens > 0:
                self._measure_after_reply(job.job_id)


def _growth(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else after - before
