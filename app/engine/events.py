"""Events the engine host reports through its callback, from its inference thread.

Every event names the job it belongs to, so a listener can ignore replies it has abandoned.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.types import GenerationStats, ModelInfo


@dataclass(frozen=True)
class LoadProgress:
    job_id: int
    fraction: float  # 0.0 … 1.0


@dataclass(frozen=True)
class Loaded:
    job_id: int
    path: str
    info: ModelInfo
    n_ctx: int
    seconds: float


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
    text: str
    stats: GenerationStats


@dataclass(frozen=True)
class Failed:
    job_id: int
    message: str  # one sentence a user can act on; details go to the log
    kind: str  # "load", "generate", "context", "count"


EngineEvent = LoadProgress | Loaded | Unloaded | PromptInfo | Token | Done | Failed
