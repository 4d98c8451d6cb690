"""Events the engine host reports through its callback, from its inference thread.

Every event names the job it belongs to, so a listener can ignore replies it has abandoned.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.types import GenerationStats, ModelInfo, ToolCall


@dataclass(frozen=True)
class LoadProgress:
    job_id: int
    fraction: float  # 0.0 … 1.0


@dataclass(frozen=True)
class MemoryCheck:
    """The fit estimate beside what loading really cost, so users can judge the estimate.

    ``actual_ram_growth`` is the process RSS growth since just before the load. Right after the
    load it undercounts: mmapped weights, the KV cache and compute buffers only become resident
    once used, so the host measures again after the first reply (``after_reply`` True). Even
    then a short reply does not touch the compute buffer's full-context peak the estimate
    counts. VRAM fields are summed over GPUs and None where NVML reports no GPU.
    """

    model_path: str
    n_ctx: int
    kv_type: str
    gpu_layers: int
    estimated_ram: int
    actual_ram_growth: int
    estimated_vram: int | None = None
    actual_vram_growth: int | None = None
    after_reply: bool = False


@dataclass(frozen=True)
class Loaded:
    job_id: int
    path: str
    info: ModelInfo
    n_ctx: int
    seconds: float
    memory: MemoryCheck | None = None  # None where measuring failed; defaulted for old callers


@dataclass(frozen=True)
class MemoryMeasured:
    """The loaded model's MemoryCheck again, measured after its first reply completed."""

    job_id: int  # the chat job whose reply triggered the measurement
    check: MemoryCheck


@dataclass(frozen=True)
class Unloaded:
    job_id: int
    path: str


@dataclass(frozen=True)
class PromptInfo:
    """Sent before decoding starts: how the conversation fits the context window."""

    job_id: int
    prompt_tokens: int
    n_ctx: int
    dropped_messages: int  # oldest turns left out by the overflow policy


@dataclass(frozen=True)
class Token:
    job_id: int
    text: str


@dataclass(frozen=True)
class Done:
    job_id: int
    text: str  # the visible reply: with tools offered, the calls' markup is never in it
    stats: GenerationStats
    tool_calls: tuple[ToolCall, ...] = ()  # calls the reply asked for (tools offered only)


@dataclass(frozen=True)
class Failed:
    job_id: int
    message: str  # one sentence a user can act on; details go to the log
    kind: str  # "load", "generate", "context", "count"


EngineEvent = (
    LoadProgress | Loaded | MemoryMeasured | Unloaded | PromptInfo | Token | Done | Failed
)
