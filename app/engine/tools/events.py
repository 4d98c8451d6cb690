"""What a streaming tool-call parser reports, in OpenAI delta order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContentDelta:
    """Visible reply text (reasoning included, think tags and all); never empty."""

    text: str


@dataclass(frozen=True)
class ToolCallBegin:
    """A call starts: its index in this reply, id (never empty) and function name."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallArgs:
    """A piece of call ``index``'s arguments (JSON text); the pieces join to a JSON object."""

    index: int
    fragment: str


ToolEvent = ContentDelta | ToolCallBegin | ToolCallArgs
