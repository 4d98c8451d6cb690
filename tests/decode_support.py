"""Driving a loaded model's decode loop from a test: submit a prompt, collect what it streams."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from app.engine.serving.jobs import Finished, Piece, SequenceFailed, SequenceHandle, SequenceJob
from app.engine.types import Sampling

GREEDY = Sampling(temperature=0.0, max_tokens=8, repeat_penalty=1.0)


class Reply:
    """One sequence's events (they arrive on the model's decode thread)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.end: Finished | SequenceFailed | None = None
        self.done = threading.Event()

    def __call__(self, event: object) -> None:
        if isinstance(event, Piece):
            self.pieces.append(event.text)
        else:
            self.end = event  # type: ignore[assignment]
            self.done.set()

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def finished(self, timeout: float = 30.0) -> Finished:
        """The sequence's end, once it came; it must have finished, not failed."""
        assert self.done.wait(timeout), "the sequence never ended"
        assert isinstance(self.end, Finished), self.end
        return self.end


def submit(model: object, tokens: Sequence[int], sampling: Sampling = GREEDY, *,
           stop: Sequence[str] = (), interactive: bool = True, reply: Reply | None = None
           ) -> tuple[Reply, SequenceHandle]:
    """Start ``tokens`` on ``model`` (a `LoadedModel`); by default as the window's chat does."""
    reply = reply or Reply()
    job = SequenceJob(list(tokens), sampling, stop=list(stop), interactive=interactive)
    return reply, model.submit(job, reply)  # type: ignore[attr-defined]


def complete(model: object, tokens: Sequence[int], sampling: Sampling = GREEDY, *,
             stop: Sequence[str] = ()) -> Reply:
    """``tokens`` decoded to the end of the reply."""
    reply, _ = submit(model, tokens, sampling, stop=stop)
    reply.finished()
    return reply
