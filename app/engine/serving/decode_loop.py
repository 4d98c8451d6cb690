"""Continuous batching: one thread decodes every running sequence of a model together.

Each step decodes the last sampled token of every generating sequence in one llama.cpp batch and
samples each with its own chain at its own output row, then decodes the next chunk of each newly
admitted prompt. A request joins at the next step and a cancelled one leaves at the next step
(or in the middle of an image it is feeding: see `image_feed`), freeing its slot. Each slot
keeps the tokens its KV range holds, so a request that starts with them (the next turn of a
chat) decodes only the rest; a new request takes the free slot whose tokens share the longest
prefix with its prompt.

The last slot is kept for interactive work (the window's chat), so API traffic filling every
other slot never makes a user wait; decoding one token per sequence per step shares the rest
fairly.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

from app.engine.inference.runtime import token_piece
from app.engine.inference.sampler_chain import PENALTY_LAST_N, make_chain
from app.engine.inference.stop_text import StopTextStream
from app.engine.serving.image_feed import feed_image, image_boundary
from app.engine.serving.jobs import (
    Finished,
    FinishReason,
    Piece,
    SequenceEvent,
    SequenceFailed,
    SequenceHandle,
    SequenceJob,
)
from app.engine.serving.logprobs import token_logprobs
from app.engine.structured import vocab_index
from app.engine.structured.grammar_sampling import GrammarError, GrammarSampler
from app.engine.types import GenerationStats
from app.engine.vision.projector import Projector, ProjectorError
from app.engine.vision.prompt import is_placeholder

OnEvent = Callable[[SequenceEvent], None]
IDLE_WAIT_S = 0.5


@dataclass
class _Request:
    job: SequenceJob
    on_event: OnEvent
    handle: SequenceHandle


@dataclass
class _Slot:
    seq: int
    interactive: bool
    cached: list[int] = field(default_factory=list)  # tokens whose K/V this sequence holds
    # Position of cached[i] is i + shift: an M-RoPE image (Qwen2-VL) takes fewer positions
    # than tokens. 0 for text, and for images of every other kind.
    shift: int = 0
    request: _Request | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not decoded yet
    next_token: int | None = None  # sampled, decoded at the next step
    chain: Any = None
    grammar: GrammarSampler | None = None  # the job's output format, checked after sampling
    stream: StopTextStream | None = None
    generated: int = 0
    logprobs: list = field(default_factory=list)  # TokenLogprobs not yet sent with a piece
    stats: GenerationStats = field(default_factory=GenerationStats)
    started: float = 0.0
    first_token: float = 0.0


class DecodeLoop:
    def __init__(self, runtime: Any, parallel: int, n_ctx_seq: int, n_batch: int,
                 projector: Projector | None = None) -> None:
        """``runtime``: a loaded `Runtime` with ``parallel + 1`` sequences; this loop's thread
        owns it from now on, and ``projector`` (a vision model's) with it."""
        self._rt = runtime
        self._projector = projector
        self._ctx, self._vocab = runtime._ctx, runtime._vocab
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.n_ctx_seq = n_ctx_seq
        self._n_batch = n_batch
        self._slots = [_Slot(seq, interactive=seq == parallel) for seq in range(parallel + 1)]
        self._queue: deque[_Request] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._piece_buf = ctypes.create_string_buffer(256)
        self._vocab_index: Any = None  # for grammars; read at the first constrained job
        self._thread = threading.Thread(target=self._run, name="hearth-decode", daemon=True)
        self._thread.start()

    # -- any thread ----------------------------------------------------------------------------
    def submit(self, job: SequenceJob, on_event: OnEvent) -> SequenceHandle:
        handle = SequenceHandle()
        with self._wake:
            request = _Request(job, on_event, handle)
            if job.interactive:
                self._queue.appendleft(request)
            else:
                self._queue.append(request)
            self._wake.notify()
        return handle

    def cached_after(self, prefix: list[int]) -> list[int]:
        """What an idle slot holds after ``prefix`` (a reply it wrote to it: Continue's)."""
        with self._wake:
            return max((s.cached[len(prefix):] for s in self._slots if s.request is None
                        and s.cached[:len(prefix)] == prefix), key=len, default=[])

    def busy_slots(self) -> int:
        return sum(1 for slot in self._slots if slot.request is not None) + len(self._queue)

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)

    # -- the decode thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    if self._stopping:
                        break
                    self._admit()
                    if not any(slot.request for slot in self._slots):
                        self._wake.wait(IDLE_WAIT_S)
                        continue
                self._drop_cancelled()
                if any(slot.request for slot in self._slots):
                    self._step()
        finally:
            for slot in self._slots:
                if slot.request is not None:
                    self._finish(slot, "cancelled")
            while self._queue:
                request = self._queue.popleft()
                _never_started(request)
            llama_cpp.llama_batch_free(self._batch)

    def _admit(self) -> None:
        """Give queued requests free slots (called with the lock held)."""
        waiting: deque[_Request] = deque()
        while self._queue:
            request = self._queue.popleft()
            if request.handle.cancelled:
                _never_started(request)
                continue
            free = [s for s in self._slots if s.request is None
                    and (request.job.interactive or not s.interactive)]
            if not free:
                waiting.append(request)
                continue
            tokens = request.job.tokens
            slot = max(free, key=lambda s: (_common_prefix(s.cached, tokens), s.interactive))
            self._start(slot, request)
        self._queue = waiting

    def _start(self, slot: _Slot, request: _Request) -> None:
        grammar = None
        if request.job.grammar is not None:
            if self._vocab_index is None:
                self._vocab_index = vocab_index.build(self._vocab, self._n_vocab)
            job = request.job
            try:
                grammar = GrammarSampler(
                    self._vocab, self._n_vocab, job.grammar, self._vocab_index,
                    top_k=1 if job.sampling.temperature <= 0 else job.sampling.top_k,
                    boosted=job.logit_bias, window=PENALTY_LAST_N)
            except GrammarError as exc:
                _send(request, SequenceFailed(str(exc)))
                request.handle._end()
                return
        tokens = request.job.tokens
        # At least the last prompt token is decoded again: its logits give the first reply token.
        keep = min(_common_prefix(slot.cached, tokens), len(tokens) - 1)
        job = request.job
        keep, slot.shift = image_boundary(keep, job.images)
        llama_cpp.llama_memory_seq_rm(self._memory, slot.seq, keep + slot.shift, -1)
        slot.request, slot.cached, slot.pending = request, tokens[:keep], tokens[keep:]
        slot.next_token, slot.generated, slot.logprobs = None, 0, []
        slot.chain = make_chain(job.sampling, self._n_vocab,
                                presence_penalty=job.presence_penalty,
                                frequency_penalty=job.frequency_penalty,
                                logit_bias=job.logit_bias)
        slot.grammar = grammar
        slot.stream = StopTextStream(list(job.stop) + list(job.sampling.stop))
        slot.stats = GenerationStats(prompt_tokens=len(tokens), cached_tokens=keep,
                                     n_ctx=self.n_ctx_seq,
                                     image_tokens=sum(s.n_tokens for s in job.images))
        slot.started = slot.first_token = time.perf_counter()

    def _drop_cancelled(self) -> None:
        for slot in self._slots:
            if slot.request is not None and slot.request.handle.cancelled:
                self._finish(slot, "cancelled")

    def _step(self) -> None:
        """Decode every generating sequence's next token together, then each new prompt's next
        chunk in a call of its own.

        A prompt never shares a call: llama.cpp would split it into pieces as long as its
        neighbours' (one token each, for generating ones), and attention computed over other
        pieces rounds differently, so the reply would depend on who else is being served. Alone,
        a prompt's chunks always start at the same tokens, whoever else is running.
        """
        generating = [s for s in self._slots if s.request is not None and s.next_token is not None]
        if generating:
            rows = [(slot, slot.next_token, len(slot.cached) + slot.shift, True)
                    for slot in generating]
            if not self._decode(rows, generating):
                return
            for slot in generating:
                slot.cached.append(slot.next_token)  # type: ignore[arg-type]
                slot.next_token = None
            for index, slot in enumerate(generating):
                self._sample(slot, index)
        # The window's prompt first; a chunk at a time, so a long prompt never holds up the
        # sequences already generating for more than one chunk.
        for slot in sorted(self._slots, key=lambda s: not s.interactive):
            if slot.request is None or not slot.pending:
                continue
            if slot.request.handle.cancelled:  # Stop lands between a prompt's pieces too
                self._finish(slot, "cancelled")
                continue
            if is_placeholder(slot.pending[0]):
                self._decode_image(slot)
                continue
            chunk = slot.pending[: self._n_batch]
            chunk = chunk[: next((i for i, t in enumerate(chunk) if is_placeholder(t)),
                                 len(chunk))]  # text up to the next image
            last = len(chunk) == len(slot.pending)
            start = len(slot.cached) + slot.shift
            rows = [(slot, token, start + i, last and i == len(chunk) - 1)
                    for i, token in enumerate(chunk)]
            if not self._decode(rows, [slot]):
                continue
            slot.cached.extend(chunk)
            slot.pending = slot.pending[len(chunk):]
            if last:
                self._sample(slot, len(chunk) - 1)

    def _decode_image(self, slot: _Slot) -> None:
        """Encode the image the slot's prompt reaches now and decode it into its sequence, in
        one step of its own (like a prompt chunk: never shared with other sequences)."""
        request = slot.request
        assert request is not None
        span = next((s for s in request.job.images if s.start == len(slot.cached)), None)
        if span is None or self._projector is None:
            self._fail_all([slot], "This model was loaded without a vision projector, so it "
                                   "cannot read images.")
            return
        start = len(slot.cached) + slot.shift
        try:
            end = feed_image(self._projector, self._ctx, self._memory, span, start, slot.seq,
                             self._n_batch, lambda: request.handle.cancelled or self._stopping)
        except ProjectorError as exc:
            self._fail_all([slot], str(exc))
            return
        if end is None:  # Stop (or unloading) mid-image: the text before it stays cached
            self._finish(slot, "cancelled")
            return
        slot.cached.extend(slot.pending[: span.n_tokens])
        slot.pending = slot.pending[span.n_tokens:]
        slot.shift += (end - start) - span.n_tokens

    def _decode(self, rows: list[tuple[_Slot, int, int, bool]], slots: list[_Slot]) -> bool:
        """Decode ``rows`` (slot, token, position, wants logits) in one call; on failure the
        ``slots`` fail and False is returned."""
        batch = self._batch
        for n, (slot, token, pos, logits) in enumerate(rows):
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = slot.seq
            batch.logits[n] = logits
        batch.n_tokens = len(rows)
        rc = llama_cpp.llama_decode(self._ctx, batch)
        if rc != 0:
            self._fail_all(slots, f"llama.cpp could not decode (code {rc}).")
        return rc == 0

    def _sample(self, slot: _Slot, index: int) -> None:
        request = slot.request
        assert request is not None and slot.stream is not None
        if slot.grammar is None:
            token = llama_cpp.llama_sampler_sample(slot.chain, self._ctx, index)
        else:
            found, slot.chain = slot.grammar.sample(slot.chain, self._ctx, index)
            if found is None:
                self._fail_all([slot], "No token of this model can continue the required "
                                       "format.")
                return
            token = found
        slot.generated += 1
        if slot.generated == 1:
            slot.first_token = time.perf_counter()
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "eos")
            return
        piece = self._piece(token)
        if not piece and request.job.control_text:  # a control token: a marker to write out?
            marker = token_piece(self._vocab, token, self._piece_buf, special=True)
            if marker.decode("utf-8", "replace") in request.job.control_text:
                piece = marker
        if request.job.top_logprobs is not None:
            slot.logprobs.append(token_logprobs(self._ctx, index, token, self._n_vocab,
                                                request.job.top_logprobs, self._piece))
        text = slot.stream.feed(piece)
        if text:
            _send(request, Piece(text, tuple(slot.logprobs)))
            slot.logprobs = []
        if slot.stream.stopped:
            self._finish(slot, "stop")
        elif 0 < request.job.sampling.max_tokens <= slot.generated:  # 0: no limit
            self._finish(slot, "length")
        elif len(slot.cached) >= self.n_ctx_seq:
            self._finish(slot, "context")
        else:
            slot.next_token = token

    def _piece(self, token: int) -> bytes:
        return token_piece(self._vocab, token, self._piece_buf)

    def _finish(self, slot: _Slot, reason: FinishReason) -> None:
        request = slot.request
        assert request is not None
        stream = slot.stream
        if stream is not None and reason not in ("stop", "cancelled"):
            tail = stream.flush()
            if tail or slot.logprobs:
                _send(request, Piece(tail, tuple(slot.logprobs)))
        ended = time.perf_counter()
        stats = slot.stats
        stats.generated_tokens = slot.generated
        stats.time_to_first_token = slot.first_token - slot.started
        stats.total_seconds = ended - slot.started
        if slot.generated > 1 and ended > slot.first_token:
            stats.tokens_per_second = (slot.generated - 1) / (ended - slot.first_token)
        stats.stop_reason = reason
        stats.context_used = len(slot.cached)
        self._release(slot)
        _send(request, Finished(reason, stream.text if stream else "", stats))
        request.handle._end()

    def _release(self, slot: _Slot) -> None:
        """Free the slot for the next request; its cached tokens stay for prefix reuse."""
        llama_cpp.llama_sampler_free(slot.chain)
        if slot.grammar is not None:
            slot.grammar.close()
        slot.chain, slot.request, slot.next_token, slot.stream = None, None, None, None
        slot.grammar = None
        slot.pending = []  # a prompt cut short: only what was decoded stays cached

    def _fail_all(self, slots: list[_Slot], message: str) -> None:
        for slot in slots:
            request = slot.request
            if request is None:
                continue
            # What this batch wrote to its KV range is unknown now: start that slot afresh.
            llama_cpp.llama_memory_seq_rm(self._memory, slot.seq, 0, -1)
            slot.cached, slot.shift = [], 0
            self._release(slot)
            _send(request, SequenceFailed(message))
            request.handle._end()


def _never_started(request: _Request) -> None:
    _send(request, Finished("cancelled", "", GenerationStats(stop_reason="cancelled")))
    request.handle._end()


def _send(request: _Request, event: SequenceEvent) -> None:
    try:
        request.on_event(event)
    except Exception:  # noqa: BLE001 - a listener's bug must not stop every other sequence
        pass


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
