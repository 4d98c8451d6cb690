"""The values every tool source shares: a tool's description and the text a call returns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

BUILTIN: Literal["builtin"] = "builtin"

# C0 controls (ESC included, so no terminal escape survives) and DEL; tab and newlines stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Tool:
    """One tool a model may call.

    ``name`` is what the model sees and calls (unique in a ToolBox, at most 64 of
    ``[A-Za-z0-9_-]``); ``remote_name`` is the tool's own name at its source, which is "builtin"
    or the MCP server's name from mcp.json. ``destructive_hint`` is the server's own claim
    (untrusted: it may only add caution, never skip the user's approval); None when not given.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    source: str
    destructive_hint: bool | None = None
    remote_name: str = ""

    def __post_init__(self) -> None:
        if not self.remote_name:
            object.__setattr__(self, "remote_name", self.name)

    @property
    def key(self) -> tuple[str, str]:
        """What permissions remember: the source and the tool's name there."""
        return (self.source, self.remote_name)

    def openai(self) -> dict[str, Any]:
        """The OpenAI function-tool form (`tools=[...]` in a chat request)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolResult:
    """What a call gave back: plain, untrusted text for the model and the user, never acted on."""

    text: str
    is_error: bool = False
    truncated: bool = field(default=False, compare=False)

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(plain_text(message), True)


def plain_text(text: str) -> str:
    """Text with control characters removed, so a result can't drive a terminal or a parser."""
    return _CONTROL.sub("", text)


def bound_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """At most ``max_bytes`` of UTF-8 plus a visible note when anything was cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text, False
    kept = data[:max_bytes].decode("utf-8", "ignore")
    note = (f"\n[output truncated: {len(data):,} bytes, showing the first {max_bytes:,}]")
    return kept + note, True
