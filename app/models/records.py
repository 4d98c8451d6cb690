"""Immutable snapshots the Store hands out instead of ORM objects, safe to pass between threads."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.engine.inference.reasoning import (
    ThinkingSplit,
    reasoning_apart,
    reasoning_joined,
    split_thinking,
)
from app.engine.quantize.quality import QualityReport
from app.engine.types import GenerationStats, ModelInfo, Role, Sampling, ToolCall
from app.models.document_records import ReplySources
from app.models.image_records import StoredImage, images_from_json

MessageStatus = Literal["complete", "partial", "failed", "streaming"]
OverflowPolicy = Literal["stop", "truncate_oldest"]
ModelSource = Literal["import", "starter", "indexed", "download", "quantize"]

MESSAGE_STATUSES: frozenset[str] = frozenset({"complete", "partial", "failed", "streaming"})
OVERFLOW_POLICIES: frozenset[str] = frozenset({"stop", "truncate_oldest"})
MODEL_SOURCES: frozenset[str] = frozenset(
    {"import", "starter", "indexed", "download", "quantize"}
)
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class ChatRecord:
    id: int
    title: str
    system_prompt: str
    sampling: Sampling
    model_path: str | None
    overflow_policy: OverflowPolicy
    created_at: datetime  # aware, UTC
    updated_at: datetime  # aware, UTC
    # Structured output (issue 12): the schema text as the user wrote it (None: none), and
    # whether replies are constrained to it.
    response_schema: str | None = None
    structured_output: bool = False
    tools_enabled: bool = False  # the per-chat "Tools" switch


@dataclass(frozen=True)
class MessageRecord:
    id: int
    chat_id: int
    role: Role
    content: str
    status: MessageStatus
    error: str | None
    created_at: datetime  # aware, UTC
    # Stats stay JSON text until asked for: decoding them for every row would dominate the
    # cost of loading a long chat, and the UI reads them for a few messages at most.
    stats_json: str | None = field(default=None, repr=False)
    parent_id: int | None = None  # the message this one follows (see app.models.store.message_tree)
    # JSON (migration 0008): an assistant turn's calls, or the call a "tool" turn answers.
    tool_json: str | None = field(default=None, repr=False)
    # JSON (migration 0010): a reply's document sources; read through `sources`.
    sources_json: str | None = field(default=None, repr=False)
    # JSON (migration 0011): a user message's attached images; read through `images`.
    images_json: str | None = field(default=None, repr=False)
    # Migration 0012: a reply's reasoning, stored apart from its answer when it ended (None
    # for rows written before, whose reasoning is still inside `content`).
    reasoning: str | None = field(default=None, repr=False)

    @property
    def thinking(self) -> ThinkingSplit:
        """How the window shows a reply: its reasoning (open while a reply streams inside its
        think block) and its answer."""
        if self.reasoning:
            return ThinkingSplit(self.reasoning, self.content, False)
        stats = self.stats if self.stats_json else None
        split = split_thinking(self.content,
                               starts_in_thinking=stats is not None and stats.opens_thinking)
        # Open only while it streams: a reply that ended inside its reasoning thought no more.
        return split if self.status == "streaming" else dataclasses.replace(split,
                                                                           thinking_open=False)

    @property
    def text_with_reasoning(self) -> str:
        """The reply whole, stored reasoning back in its think tags (Copy with reasoning)."""
        return reasoning_joined(self.content, self.reasoning or "")

    @property
    def answer_and_reasoning(self) -> tuple[str, str]:
        """A reply's answer and its reasoning: stored apart since migration 0012, split off the
        text for older rows and a reply still streaming (reasoning "" when there is none)."""
        if self.reasoning:
            return self.content, self.reasoning
        if self.role != "assistant":
            return self.content, ""
        stats = self.stats if self.stats_json else None
        opened = stats.opens_thinking if stats is not None else False
        return reasoning_apart(self.content, starts_in_thinking=opened)

    @property
    def images(self) -> tuple[StoredImage, ...]:
        """The images attached to a user message (none for others, and for damaged JSON)."""
        return images_from_json(self.images_json)

    @property
    def sources(self) -> ReplySources | None:
        """The mode sentence and citations of a reply made with documents (None otherwise, and
        for damaged JSON)."""
        if not self.sources_json:
            return None
        try:
            data = json.loads(self.sources_json)
        except (ValueError, RecursionError):
            return None
        return ReplySources.from_dict(data)

    @property
    def stats(self) -> GenerationStats | None:
        return GenerationStats.from_dict(json.loads(self.stats_json)) if self.stats_json else None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls an assistant turn asked for (none for other messages)."""
        calls = self.tool_data.get("calls") if self.role == "assistant" else None
        if not isinstance(calls, list):
            return ()
        return tuple(ToolCall(str(c.get("id", "")), str(c.get("name", "")),
                              str(c.get("arguments", "{}")))
                     for c in calls if isinstance(c, dict))

    @property
    def tool_turn(self) -> ToolTurn | None:
        """For a "tool" turn: the call it answers and what the user decided."""
        data = self.tool_data
        if self.role != "tool" or not data:
            return None
        return ToolTurn(str(data.get("call_id", "")), str(data.get("name", "")),
                        str(data.get("arguments", "")), str(data.get("source", "")),
                        str(data.get("decision", "")), bool(data.get("is_error", False)))

    @property
    def tool_data(self) -> dict[str, Any]:
        try:
            data = json.loads(self.tool_json) if self.tool_json else {}
        except ValueError:  # a damaged row shows as an ordinary message
            return {}
        return data if isinstance(data, dict) else {}


ToolDecision = Literal["allowed", "always", "denied"]


@dataclass(frozen=True)
class ToolTurn:
    """What a "tool" message answers: the call (name, arguments as JSON text), where the tool
    comes from ("builtin" or an MCP server's name), the user's decision and whether it failed."""

    call_id: str
    name: str
    arguments: str
    source: str
    decision: str
    is_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "name": self.name, "arguments": self.arguments,
                "source": self.source, "decision": self.decision, "is_error": self.is_error}


def calls_data(calls: Sequence[ToolCall]) -> dict[str, Any]:
    """The ``tool`` value of an assistant turn that called tools."""
    return {"calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]}


@dataclass(frozen=True)
class ModelFileRecord:
    id: int
    source: ModelSource
    added_at: datetime  # aware, UTC
    path: str
    file_size: int
    architecture: str
    name: str
    parameter_count: int
    file_type: str
    context_length: int
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    has_chat_template: bool
    chat_template: str | None
    sliding_window: int | None
    layer_tensor_bytes: tuple[int, ...]
    other_tensor_bytes: int

    @property
    def info(self) -> ModelInfo:
        """A fresh ModelInfo each call, so callers may mutate it without touching this record."""
        fields = {name: getattr(self, name) for name in ModelInfo.__dataclass_fields__}
        fields["layer_tensor_bytes"] = list(self.layer_tensor_bytes)
        return ModelInfo(**fields)


@dataclass(frozen=True)
class PresetRecord:
    id: int
    name: str
    system_prompt: str
    sampling: Sampling | None
    builtin: bool


@dataclass(frozen=True)
class SearchHit:
    chat_id: int
    chat_title: str
    message_id: int
    role: Role
    snippet: str  # matched words wrapped in the markers passed to search_messages


@dataclass(frozen=True)
class MemoryCheckRecord:
    """One stored estimated-vs-measured memory pair; byte counts, VRAM None without a GPU."""

    id: int
    model_path: str
    created_at: datetime  # aware, UTC
    n_ctx: int
    kv_type: str
    gpu_layers: int
    estimated_ram: int
    actual_ram: int
    estimated_vram: int | None
    actual_vram: int | None
    after_reply: bool


@dataclass(frozen=True)
class LineageRecord:
    """A quantized model's origin: the file it was made from and the type it was made as."""

    output_path: str
    source_path: str
    quant_type: str
    imatrix_path: str | None
    created_at: datetime  # aware, UTC


@dataclass(frozen=True)
class QualityReportRecord:
    id: int
    created_at: datetime  # aware, UTC
    report: QualityReport
