"""Export a chat as Markdown (to read or share) or JSON (to keep everything, machine-readable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from app.models.document_records import Citation
from app.models.records import ChatRecord, MessageRecord, ToolTurn

EXPORT_FORMAT_VERSION = 1
_ROLE_TITLES = {"system": "System", "user": "You", "assistant": "Assistant", "tool": "Tool"}
_DECISIONS = {"allowed": "allowed once", "always": "always allowed", "denied": "denied by the user"}


def export_markdown(chat: ChatRecord, messages: Sequence[MessageRecord]) -> str:
    lines = [f"# {chat.title}", ""]
    lines.append(f"- Model: `{chat.model_path}`" if chat.model_path else "- Model: none recorded")
    lines.append(f"- Created: {chat.created_at.isoformat(timespec='seconds')}")
    lines.append(f"- Overflow policy: {chat.overflow_policy}")
    s = chat.sampling
    lines.append(
        f"- Sampling: temperature {s.temperature}, top_p {s.top_p}, top_k {s.top_k}, "
        f"min_p {s.min_p}, repeat penalty {s.repeat_penalty}, max tokens {s.max_tokens}, "
        f"seed {s.seed}"
    )
    if chat.structured_output:
        lines.append("- Structured output: on (replies follow the response schema below)")
    if chat.tools_enabled:
        lines.append("- Tools: on (every call waited for the user's decision)")
    lines.append("")
    if chat.system_prompt.strip():
        lines += ["## System prompt", "", chat.system_prompt.strip(), ""]
    if chat.response_schema and chat.response_schema.strip():
        lines += ["## Response schema", "", _fenced(chat.response_schema.strip(), "json"), ""]
    for message in messages:
        turn = message.tool_turn
        if turn is not None:
            lines += _tool_turn_markdown(turn, message.content)
            continue
        heading = _ROLE_TITLES.get(message.role, message.role)
        if message.status in ("partial", "failed"):
            heading += f" ({message.status})"
        calls = message.tool_calls
        text = message.content.strip() or ("" if calls else "_(no text)_")
        lines += [f"## {heading}", ""]
        sources = message.sources if message.role == "assistant" else None
        if sources is not None and sources.explanation:
            lines += [f"_{sources.explanation}_", ""]
        lines += [text, ""] if text else []
        if sources is not None and sources.citations:
            lines += ["Sources:", ""] + [f"- {_source_line(c)}" for c in sources.citations] + [""]
        for call in calls:
            lines += [f"Called tool `{call.name}` with:", "", _fenced(call.arguments, "json"), ""]
        if message.status == "failed" and message.error:
            lines += [f"> Failed: {message.error}", ""]
        stats = message.stats
        if stats is not None and message.role == "assistant":
            lines += [
                f"_{stats.generated_tokens} tokens · {stats.tokens_per_second:.1f} tok/s · "
                f"first token after {stats.time_to_first_token:.2f} s_",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def export_json(chat: ChatRecord, messages: Sequence[MessageRecord]) -> str:
    data: dict[str, Any] = {
        "format": "hearth-chat",
        "version": EXPORT_FORMAT_VERSION,
        "title": chat.title,
        "model_path": chat.model_path,
        "system_prompt": chat.system_prompt,
        "sampling": chat.sampling.to_dict(),
        "overflow_policy": chat.overflow_policy,
        "structured_output": chat.structured_output,
        "response_schema": chat.response_schema,
        "tools_enabled": chat.tools_enabled,
        "created_at": chat.created_at.isoformat(),
        "updated_at": chat.updated_at.isoformat(),
        "messages": [_message(m) for m in messages],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _fenced(text: str, language: str) -> str:
    """A code block whose fence is longer than any backtick run inside (the text is the
    user's, so it may hold fences of its own)."""
    run, current = 0, 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        run = max(run, current)
    fence = "`" * max(3, run + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _source_line(citation: Citation) -> str:
    line = f"[{citation.number}] {PurePath(citation.document_path).name}"
    if citation.page is not None:
        line += f", page {citation.page}"
    return line + (f" — {citation.heading}" if citation.heading else "")


def _tool_turn_markdown(turn: ToolTurn, result: str) -> list[str]:
    source = "built-in" if turn.source == "builtin" else f"MCP server {turn.source}"
    decision = _DECISIONS.get(turn.decision, turn.decision)
    heading = f"## Tool result: `{turn.name}` ({source}, {decision})"
    label = "Error" if turn.is_error else "Result"
    return [heading, "", "Arguments:", "", _fenced(turn.arguments, "json"), "",
            f"{label} (from the tool, untrusted):", "", _fenced(result, "text"), ""]


def _message(message: MessageRecord) -> dict[str, Any]:
    stats = message.stats
    extra: dict[str, Any] = {}
    if message.tool_calls:
        extra["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments}
                               for c in message.tool_calls]
    if message.tool_turn is not None:
        extra["tool"] = message.tool_turn.to_dict()
    sources = message.sources
    if sources is not None:
        extra["sources"] = sources.to_dict()
    return {
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "stats": stats.to_dict() if stats is not None else None,
        "created_at": message.created_at.isoformat(),
        **extra,
    }
