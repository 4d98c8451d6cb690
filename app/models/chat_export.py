"""Export a chat as Markdown (to read or share) or JSON (to keep everything, machine-readable)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from app.models.records import ChatRecord, MessageRecord

EXPORT_FORMAT_VERSION = 1
_ROLE_TITLES = {"system": "System", "user": "You", "assistant": "Assistant"}


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
    lines.append("")
    if chat.system_prompt.strip():
        lines += ["## System prompt", "", chat.system_prompt.strip(), ""]
    for message in messages:
        heading = _ROLE_TITLES[message.role]
        if message.status in ("partial", "failed"):
            heading += f" ({message.status})"
        lines += [f"## {heading}", "", message.content.strip() or "_(no text)_", ""]
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
        "created_at": chat.created_at.isoformat(),
        "updated_at": chat.updated_at.isoformat(),
        "messages": [_message(m) for m in messages],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _message(message: MessageRecord) -> dict[str, Any]:
    stats = message.stats
    return {
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "error": message.error,
        "stats": stats.to_dict() if stats is not None else None,
        "created_at": message.created_at.isoformat(),
    }
