"""How tool calls and results read in the chat: a one-line summary for a collapsed block, and
the full arguments and result as plain text (escaped: they come from the model and the tool)."""

from __future__ import annotations

import json
from html import escape

from app.engine.types import ToolCall
from app.models.records import ToolTurn
from app.services.tool_loop import source_label

SHORT_CHARS = 60
DECISIONS = {"allowed": "allowed once", "always": "always allowed", "denied": "denied",
             "unknown": "no such tool"}


def short(text: str, limit: int = SHORT_CHARS) -> str:
    """One line of at most ``limit`` characters, "…" where cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def compact_arguments(arguments: str) -> str:
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(value, dict):
        return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in value.items())
    return json.dumps(value, ensure_ascii=False)


def pretty_arguments(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


def call_line(call: ToolCall) -> str:
    return f"{call.name}({short(compact_arguments(call.arguments), 40)})"


def result_summary(turn: ToolTurn, result: str) -> str:
    """The collapsed block: ``tool(args…) → result…``."""
    outcome = "denied by you" if turn.decision == "denied" else short(result) or "(no output)"
    return f"{turn.name}({short(compact_arguments(turn.arguments), 40)}) → {outcome}"


def tool_title(turn: ToolTurn) -> str:
    return f"Tool · {turn.name} · {source_label(turn.source) if turn.source else 'no such tool'}"


def tool_badge(turn: ToolTurn) -> str | None:
    if turn.decision == "denied":
        return "denied"
    return "error" if turn.is_error else DECISIONS.get(turn.decision)


def expanded_html(turn: ToolTurn, result: str) -> str:
    """The open block: every argument and the whole result, as plain text."""
    origin = source_label(turn.source) if turn.source else "Hearth"
    label = "Error" if turn.is_error else "Result"
    return (f"<p><b>Arguments</b></p>{_pre(pretty_arguments(turn.arguments))}"
            f"<p><b>{label}</b> <i>(from {escape(origin)}, untrusted: shown as plain text)</i>"
            f"</p>{_pre(result or '(no output)')}")


def _pre(text: str) -> str:
    # pre-wrap: long lines wrap inside the bubble instead of running past its edge.
    return f'<pre style="white-space: pre-wrap">{escape(text)}</pre>'


def calls_html(calls: tuple[ToolCall, ...]) -> str:
    """What an assistant turn asked to call, under its text."""
    lines = "<br/>".join(f"→ {escape(call_line(call))}" for call in calls)
    return f'<p style="color:#777777"><i>Asked to call a tool:</i><br/>{lines}</p>'
