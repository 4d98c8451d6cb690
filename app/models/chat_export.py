"""Export a chat as Markdown (to read or share) or JSON (to keep everything, machine-readable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

from app.engine.types import GenerationStats
from app.models.document_records import Citation
from app.models.image_records import StoredImage
from app.models.records import ChatRecord, MessageRecord, ToolTurn

EXPORT_FORMAT_VERSION = 1
_ROLE_TITLES = {"system": "System", "user": "You", "assistant": "Assistant", "tool": "Tool"}
_DECISIONS = {"allowed": "allowed once", "always": "always allowed", "denied": "denied by the user"}


def export_markdown(chat: ChatRecord, messages: Sequence[MessageRecord], *,
                    images_folder: Path | None = None) -> str:
    """``images_folder``: where attached images are kept (the Store's), for their paths."""
    lines = [f"# {chat.title}", ""]
    lines.append(f"- Model: `{chat.model_path}`" if chat.model_path else "- Model: none recorded")
    lines.append(f"- Created: {chat.created_at.isoformat(timespec='seconds')}")
    lines.append(f"- Overflow policy: {chat.overflow_policy}")
    s = chat.sampling
    lines.append(
        f"- Sampling: temperature {s.temperature}, top_p {s.top_p}, top_k {s.top_k}, "
        f"min_p {s.min_p}, repeat penalty {s.repeat_penalty}, "
        f"max tokens {s.reply_limit or 'until it stops'}, seed {s.seed}"
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
        answer, reasoning = message.answer_and_reasoning
        text = answer.strip() or ("" if calls or reasoning else "_(no text)_")
        lines += [f"## {heading}", ""]
        lines += _reasoning_markdown(reasoning, message.stats)
        lines += [_image_line(i, images_folder) for i in message.images]
        lines += [""] if message.images else []
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


def export_json(chat: ChatRecord, messages: Sequence[MessageRecord], *,
                images_folder: Path | None = None) -> str:
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
        "messages": [_message(m, images_folder) for m in messages],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _reasoning_markdown(reasoning: str, stats: GenerationStats | None) -> list[str]:
    """The reasoning as a quoted block under its own label, apart from the answer."""
    if not reasoning.strip():
        return []
    took = stats.thinking_seconds if stats is not None else 0.0
    label = f"> **Reasoning** (thought for {took:.1f} s)" if took else "> **Reasoning**"
    quoted = [f"> {line}".rstrip() for line in reasoning.strip().splitlines()]
    return [label, ">", *quoted, ""]


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


def _image_path(image: StoredImage, folder: Path | None) -> str:
    return str(image.path_in(folder)) if folder is not None else image.file


def _image_line(image: StoredImage, folder: Path | None) -> str:
    # The user's file name is outside text: no Markdown of its own.
    name = "".join(" " if ch in "\r\n" else ch for ch in image.name)
    path = _fenced_inline(_image_path(image, folder))
    return (f"- Image: {_fenced_inline(name)} ({image.width} × {image.height}, "
            f"{image.media_type}, {image.size} bytes) — {path}")


def _fenced_inline(text: str) -> str:
    """Inline code whose fence is longer than any backtick run inside."""
    run, current = 0, 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        run = max(run, current)
    fence = "`" * (run + 1)
    return f"{fence} {text} {fence}" if run else f"`{text}`"


def _message(message: MessageRecord, images_folder: Path | None = None) -> dict[str, Any]:
    stats = message.stats
    extra: dict[str, Any] = {}
    if message.images:
        extra["images"] = [{"name": i.name, "path": _image_path(i, images_folder),
                            "size": i.size, "media_type": i.media_type, "width": i.width,
                            "height": i.height} for i in message.images]
    if message.tool_calls:
        extra["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments}
                               for c in message.tool_calls]
    if message.tool_turn is not None:
        extra["tool"] = message.tool_turn.to_dict()
    sources = message.sources
    if sources is not None:
        extra["sources"] = sources.to_dict()
    answer, reasoning = message.answer_and_reasoning
    if reasoning:
        extra["reasoning"] = reasoning
    return {
        "role": message.role,
        "content": answer,
        "status": message.status,
        "error": message.error,
        "stats": stats.to_dict() if stats is not None else None,
        "created_at": message.created_at.isoformat(),
        **extra,
    }
