"""Drives a chat's agent loop (app.services.tool_loop) in the window: asks the user about each
call, runs approved calls on a worker thread (never the GUI thread), saves each result as a
"tool" turn and says when the model should be asked again.

Stop works at every point: while a call waits for the user (it is never run), and while a tool
runs (its result is dropped when it arrives: it is not saved and the model is not asked again).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal

from app.engine.types import ToolCall
from app.models.records import MessageRecord
from app.models.store import Store
from app.services.tool_loop import Answer, Decision, PendingCall, ToolLoop


class ToolDriver(QObject):
    approvalNeeded = Signal(object)  # PendingCall: show it and wait for `decide`
    approvalClosed = Signal()
    stepChanged = Signal(int, int)  # tool step, the cap (0, 0: no loop running)
    resultSaved = Signal(object)  # the MessageRecord of a "tool" turn
    replyWanted = Signal()  # every call of this step is answered: ask the model again
    finished = Signal(str)  # the loop ended; a notice for the user ("" for none)
    _ran = Signal(object, object, object)  # ToolLoop, PendingCall, Answer (worker → GUI)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._loop: ToolLoop | None = None
        self._chat_id: int | None = None
        self.waiting: PendingCall | None = None  # the call the approval panel shows
        self.running: PendingCall | None = None  # the call a worker is running
        self._ran.connect(self._on_ran)

    @property
    def active(self) -> bool:
        return self._loop is not None

    @property
    def loop(self) -> ToolLoop | None:
        return self._loop

    def begin(self, loop: ToolLoop) -> None:
        """A message starts a loop (its first reply is about to be generated)."""
        self._loop = loop
        self.stepChanged.emit(loop.step + 1, loop.max_steps)

    def handle(self, chat_id: int, calls: Sequence[ToolCall]) -> None:
        """A reply asked for ``calls``: go through them one by one."""
        loop = self._loop
        if loop is None:
            return
        self._chat_id = chat_id
        loop.reply_with_calls(calls)
        self.stepChanged.emit(loop.step, loop.max_steps)
        self._next()

    def decide(self, decision: Decision) -> None:
        """The user's answer to the call on screen."""
        loop, pending = self._loop, self.waiting
        if loop is None or pending is None:
            return
        self.waiting = None
        self.approvalClosed.emit()
        loop.decide(pending, decision)
        if decision == "deny":
            self._save(loop.denied(pending))
            self._next()
        else:
            self._start(loop, pending, "always" if decision == "always" else "allowed")

    def reply_ended(self) -> None:
        """A reply of the loop ended without calls (the answer), or was stopped or failed."""
        self._end("")

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.stop()
        self._end("Stopped; tool calls not yet run were not run." if self.waiting or
                  self.running else "")

    # -- internals -----------------------------------------------------------------------------
    def _next(self) -> None:
        loop = self._loop
        if loop is None:
            return
        pending = loop.next_call()
        if pending is None:
            if loop.wants_another_reply():
                self.stepChanged.emit(loop.step + 1, loop.max_steps)
                self.replyWanted.emit()
            elif loop.at_cap and not loop.stopped:
                self._end(loop.cap_notice())
            return
        if loop.needs_approval(pending):
            self.waiting = pending
            self.approvalNeeded.emit(pending)
            return
        self._start(loop, pending, "always" if pending.tool else "unknown")

    def _start(self, loop: ToolLoop, pending: PendingCall, decision: str) -> None:
        self.running = pending

        def work() -> None:
            answer = loop.run(pending, decision)
            self._ran.emit(loop, pending, answer)

        threading.Thread(target=work, name="hearth-tool-call", daemon=True).start()

    def _on_ran(self, loop: ToolLoop, pending: PendingCall, answer: Answer) -> None:
        if loop is not self._loop or loop.stopped:
            return  # stopped meanwhile: the result is dropped, the model is not asked again
        self.running = None
        self._save(answer)
        self._next()

    def _save(self, answer: Answer) -> None:
        if self._chat_id is None:
            return
        record: MessageRecord = self._store.add_message(
            self._chat_id, "tool", answer.text, tool=answer.turn.to_dict())
        self.resultSaved.emit(record)

    def _end(self, notice: str) -> None:
        if self._loop is None:
            return
        self._loop = None
        if self.waiting is not None:
            self.waiting = None
            self.approvalClosed.emit()
        self.running = None
        self.stepChanged.emit(0, 0)
        self.finished.emit(notice)
