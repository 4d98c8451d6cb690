"""Immutable snapshots the Store hands out instead of ORM objects, safe to pass between threads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.engine.quantize.quality import QualityReport
from app.engine.types import GenerationStats, ModelInfo, Role, Sampling

MessageStatus = Literal["complete", "partial", "failed", "streaming"]
OverflowPolicy = Literal["stop", "truncate_oldest"]
ModelSource = Literal["import", "starter", "indexed", "download", "quantize"]

MESSAGE_STATUSES: frozenset[str] = frozenset({"complete", "partial", "failed", "streaming"})
OVERFLOW_POLICIES: frozenset[str] = frozenset({"stop", "truncate_oldest"})
MODEL_SOURCES: frozenset[str] = frozenset(
    {"import", "starter", "indexed", "download", "quantize"}
)
ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})


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

    @property
    def stats(self) -> GenerationStats | None:
        return GenerationStats.from_dict(json.loads(self.stats_json)) if self.stats_json else None


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
