"""The agent loop of one chat with tools on: a reply's calls, each approved (or denied) by the
user, run, and answered, then the model asked again, up to a cap (Qt-free; the window drives it).

The loop holds no thread and never blocks except in `run`, which the window calls on a worker.
Its rule against prompt injection is structural: a call only runs through `run` after
`decide` (or an "always allow" the user gave that very tool earlier); a tool result is just
text for the next reply, and whatever that reply calls waits for the user in turn.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.engine.types import ToolCall
from app.models.records import ToolTurn
from app.services.tools import Tool, ToolBox, ToolPermissions, ToolResult
from app.services.tools.values import BUILTIN

DEFAULT_MAX_STEPS = 10
MAX_STEPS_KEY = "tools.max_steps"  # a setting: how many tool rounds one message may take
DENIED_TEXT = ("The user declined to run this tool call. Do not try it again; answer without "
               "it or ask the user what to do.")

Decision = Literal["allow", "always", "deny"]


def max_steps(store: Any) -> int:
    """The step cap the user set (a whole number from 1 to 100), else the default."""
    value = store.get_setting(MAX_STEPS_KEY, DEFAULT_MAX_STEPS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        return DEFAULT_MAX_STEPS
    return value


def source_label(source: str) -> str:
    """Where a tool comes from, in words: "built-in" or "MCP server NAME"."""
    return "built-in" if source == BUILTIN else f"MCP server {source}"


@dataclass(frozen=True)
class PendingCall:
    """A call the model asked for, with the tool it names (None: no such tool offered)."""

    call: ToolCall
    tool: Tool | None

    @property
    def source(self) -> str:
        return self.tool.source if self.tool else ""

    @property
    def source_label(self) -> str:
        return source_label(self.tool.source) if self.tool else "no such tool"


@dataclass(frozen=True)
class Answer:
    """What one call gave back, ready to save as a "tool" turn."""

    turn: ToolTurn
    text: str


class ToolLoop:
    """One message's tool rounds: `reply_with_calls` after each reply that called tools, then
    for every `next_call`: `needs_approval`, the user's `decide`, `run` (off the GUI thread)
    or `denied`; `wants_another_reply` says whether to ask the model again."""

    def __init__(self, box: ToolBox, permissions: ToolPermissions,
                 max_steps: int = DEFAULT_MAX_STEPS) -> None:
        self.box = box
        self.permissions = permissions
        self.max_steps = max_steps
        self.step = 0  # replies with calls so far (the on-screen "Tool step n of max")
        self.stopped = False
        self._queue: deque[PendingCall] = deque()

    def offered(self) -> list[dict[str, Any]]:
        return self.box.openai_tools()

    def reply_with_calls(self, calls: Iterable[ToolCall]) -> None:
        self.step += 1
        self._queue.extend(PendingCall(call, self.box.tool(call.name)) for call in calls)

    def next_call(self) -> PendingCall | None:
        if self.stopped or not self._queue:
            return None
        return self._queue.popleft()

    def needs_approval(self, pending: PendingCall) -> bool:
        """Every call to a real tool waits for the user, unless they always allow that tool.
        A call to no tool runs nothing (the model is told the tool does not exist)."""
        return pending.tool is not None and not self.permissions.is_always_allowed(pending.tool)

    def decide(self, pending: PendingCall, decision: Decision) -> None:
        """Record the user's answer; "always" is remembered for that tool from now on."""
        if decision == "always" and pending.tool is not None:
            self.permissions.always_allow(pending.tool)

    def run(self, pending: PendingCall, decision: str) -> Answer:
        """Run an approved call (blocking: call it on a worker thread). Never raises."""
        result = self.box.run(pending.call.name, pending.call.arguments)
        return self._answer(pending, decision, result)

    def denied(self, pending: PendingCall) -> Answer:
        return self._answer(pending, "denied", ToolResult(DENIED_TEXT, is_error=True))

    def stop(self) -> None:
        """End the loop: nothing queued runs, and a result still coming is dropped."""
        self.stopped = True
        self._queue.clear()

    @property
    def at_cap(self) -> bool:
        return self.step >= self.max_steps

    def wants_another_reply(self) -> bool:
        return not self.stopped and not self._queue and not self.at_cap

    def cap_notice(self) -> str:
        return (f"Stopped after {self.max_steps} tool steps, the limit for one message: the "
                "model did not answer yet. Send a message to let it continue.")

    @staticmethod
    def _answer(pending: PendingCall, decision: str, result: ToolResult) -> Answer:
        call = pending.call
        turn = ToolTurn(call.id, call.name, call.arguments, pending.source, decision,
                        result.is_error)
        return Answer(turn, result.text)


def calls_summary(calls: Sequence[ToolCall]) -> str:
    return ", ".join(call.name for call in calls)
