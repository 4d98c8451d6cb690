"""From the model's decode thread to the event loop, and out as Server-Sent Events.

Events arrive on the decode thread; ``call_soon_threadsafe`` hands each to the event loop's
asyncio.Queue (the decode thread never waits). When the client goes away, sending fails and
the response cancels the sequence, so its slot frees at the next decode step.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from app.engine.serving.jobs import (
    Finished,
    Piece,
    SequenceEvent,
    SequenceFailed,
    SequenceHandle,
    SequenceJob,
)
from app.engine.serving.loaded_model import LoadedModel
from app.engine.serving.pool import ContextOverflow
from app.server.errors import ClientGone, error_body
from app.server.generation import finish_reason, generation_failed, overflow_error, usage
from app.server.request_log import note_finished
from app.server.security import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"


class Running:
    """A submitted sequence and the queue its events arrive on."""

    def __init__(self, model: LoadedModel, job: SequenceJob, param: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[SequenceEvent] = asyncio.Queue()
        try:
            self.handle: SequenceHandle = model.submit(job, self._push)
        except ContextOverflow as exc:  # before any event: a plain 400
            raise overflow_error(exc.prompt_tokens, exc.n_ctx, model.key, param) from exc

    def _push(self, event: SequenceEvent) -> None:  # on the decode thread
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop has closed (server stopped): nobody is listening
            self.handle.cancel()

    async def next_event(self) -> SequenceEvent:
        return await self._queue.get()

    async def events(self) -> AsyncIterator[SequenceEvent]:
        """Every event up to and including the last (Finished or SequenceFailed)."""
        while True:
            event = await self._queue.get()
            yield event
            if isinstance(event, Finished | SequenceFailed):
                return


def sse(data: dict[str, Any]) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return b"data: " + text.encode("utf-8", "replace") + b"\n\n"  # "replace": lone surrogates


async def sse_reply(running: Running, state: Any, envelope: dict[str, Any],
                    include_usage: bool, piece_choices: Callable[[Piece], list[dict[str, Any]]],
                    end_choices: Callable[[str], list[dict[str, Any]]],
                    first_choice: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
    """A streamed reply as OpenAI sends one, for chat and completions alike: ``envelope`` (id,
    object, created, model) on every chunk; the choices each piece makes (none while a tool
    call's markup is still being read, several when a piece ends one); the last choices, the
    finish reason on the very last; then the usage chunk when asked for, and ``[DONE]``."""

    def chunk(choice: dict[str, Any]) -> bytes:
        body = {**envelope, "system_fingerprint": None, "choices": [choice]}
        if include_usage:
            body["usage"] = None
        return sse(body)

    if first_choice is not None:
        yield chunk(first_choice)
    async for event in running.events():
        if isinstance(event, Piece):
            for choice in piece_choices(event):
                yield chunk(choice)
        elif isinstance(event, Finished):
            note_finished(state, event)
            for choice in end_choices(finish_reason(event)):
                yield chunk(choice)
            if include_usage:
                yield sse({**envelope, "system_fingerprint": None, "choices": [],
                           "usage": usage(event)})
            yield DONE
        else:
            yield sse(error_body(f"Generation failed: {event.message}", type="server_error",
                                 code="generation_failed"))


class SequenceStream(StreamingResponse):
    """An SSE response that cancels its sequence however it ends (done, error, disconnect)."""

    def __init__(self, chunks: AsyncIterator[bytes], handle: SequenceHandle) -> None:
        super().__init__(chunks, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._handle.cancel()


async def collect(running: Running, request: Request) -> tuple[list[Piece], Finished]:
    """A non-streamed reply: every piece and the end, noted in the request log; a client that
    leaves cancels it (`ClientGone`, answered 499)."""
    pieces: list[Piece] = []
    gone = asyncio.ensure_future(request.receive())  # after the body, only the disconnect
    try:
        while True:
            event_task = asyncio.ensure_future(running.next_event())
            done, _ = await asyncio.wait({event_task, gone}, return_when=asyncio.FIRST_COMPLETED)
            if event_task not in done:
                event_task.cancel()
                raise ClientGone
            event = event_task.result()
            if isinstance(event, Piece):
                pieces.append(event)
            elif isinstance(event, Finished):
                note_finished(request.state, event)
                return pieces, event
            else:
                raise generation_failed(event.message)
    finally:
        gone.cancel()
        running.handle.cancel()  # a no-op once finished
