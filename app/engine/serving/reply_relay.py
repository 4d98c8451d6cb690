"""Turns a window reply's sequence events into engine events, on the decode thread: text goes
out at once, the end waits for the host's thread (it measures memory after it), and the
reply's reasoning is timed on the way (`ThinkingClock`) into its stats."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from app.engine.inference.events import Done, EngineEvent, Failed, Token
from app.engine.inference.reasoning import ThinkingClock
from app.engine.serving.chat_tools import ReplyReader
from app.engine.serving.jobs import Finished, Piece, SequenceEvent, SequenceFailed


class ReplyRelay:
    """``reader``: with tools offered, holds back call markup so only visible text goes out.
    ``in_thinking``: the reply starts inside a think block (the template opened it, or a
    continued reply stopped while reasoning); ``opened``: the template opened it."""

    def __init__(self, job_id: int, emit: Callable[[EngineEvent], None],
                 reader: ReplyReader | None, *, in_thinking: bool, opened: bool) -> None:
        self.job_id = job_id
        self._emit = emit
        self._reader = reader
        self._clock = ThinkingClock(starts_in_thinking=in_thinking)
        self._opened = opened
        self.ended: list[EngineEvent] = []

    def __call__(self, event: SequenceEvent) -> None:
        job_id, reader = self.job_id, self._reader
        if isinstance(event, Piece):
            if event.text:
                self._clock.feed(event.text, time.perf_counter())
            text = reader.feed(event.text) if reader and event.text else event.text
            if text:
                self._emit(Token(job_id, text))
        elif isinstance(event, Finished):
            stats = replace(event.stats, thinking_seconds=self._clock.seconds(time.perf_counter()),
                            opens_thinking=self._opened)
            if reader is None:
                self.ended.append(Done(job_id, event.text, stats))
                return
            rest = reader.finish()
            if rest:
                self._emit(Token(job_id, rest))
            self.ended.append(Done(job_id, reader.content, stats, reader.calls))
        elif isinstance(event, SequenceFailed):
            self.ended.append(Failed(job_id, event.message, "generate"))
