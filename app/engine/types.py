"""Values that cross layers: engine ↔ store ↔ UI ↔ CLI.

Plain dataclasses only, so every layer can build and read them without importing the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    """One function call a model asked for (OpenAI shape): ``arguments`` is a JSON object's text.

    Defined here rather than in `app.engine.tools` so `ChatMessage` can hold it without a cycle;
    `app.engine.tools` re-exports it.
    """

    id: str  # never empty: parsers make one up when the model gives none
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class DecodedImage:
    """An image's pixels row by row, 3 bytes (R, G, B) each: ``len(rgb) == width * height * 3``
    (`app.engine.vision.images.load_image` makes them from files and bytes)."""

    width: int
    height: int
    rgb: bytes = field(repr=False)
    format: str = "PNG"  # "PNG", "JPEG", "WEBP" or "GIF": what the bytes were


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant turn that called tools
    tool_call_id: str = ""  # a "tool" turn: the call it answers
    name: str = ""  # a "tool" turn: the tool's name
    images: tuple[DecodedImage, ...] = ()  # a user turn's images, shown before its text
    # An earlier reply's reasoning, for a template that reads it (see reasoning_for_template).
    reasoning_content: str = ""


@dataclass
class ModelInfo:
    """What the GGUF header says about a model file, read without loading weights."""

    path: str
    file_size: int
    architecture: str
    name: str
    parameter_count: int
    file_type: str  # quant label such as "Q4_K_M" or "F16"
    context_length: int
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    has_chat_template: bool
    chat_template: str | None = None
    sliding_window: int | None = None
    layer_tensor_bytes: list[int] = field(default_factory=list)
    other_tensor_bytes: int = 0  # token embedding, output head, final norm

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelShape:
    """Header values the memory-fit estimate needs beyond ModelInfo; 0/None where unknown.

    Kept apart from ModelInfo, which the library stores: these are read from the header when
    an estimate needs them.
    """

    key_length: int | None = None  # per-head K size, when it is not embedding / heads
    value_length: int | None = None
    feed_forward_length: int = 0
    vocab_size: int = 0
    output_tensor_bytes: int = 0  # output head + final norm (the token embedding when tied)


@dataclass
class LoadSettings:
    n_ctx: int = 4096
    n_threads: int | None = None  # None: physical cores
    n_gpu_layers: int = 0
    n_batch: int = 512
    use_mmap: bool = True
    use_mlock: bool = False
    flash_attn: bool = False
    kv_cache_type: str = "f16"  # "f16" | "q8_0" | "q4_0"
    seed: int = -1  # the model's default sampling seed; a chat's own seed wins; -1: random
    parallel: int = 4  # sequences decoded together when serving (the window keeps one more)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_LIMIT = 0  # Sampling.max_tokens: no limit on the reply's length


@dataclass
class Sampling:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    # NO_LIMIT (0, or less): until the model stops or the context is full, as LM Studio.
    max_tokens: int = 0
    seed: int = -1
    stop: list[str] = field(default_factory=list)

    @property
    def reply_limit(self) -> int | None:
        """The longest reply in tokens, or None for no limit."""
        return self.max_tokens if self.max_tokens > NO_LIMIT else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Sampling:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


StopReason = Literal["eos", "length", "stop", "cancelled", "error", "context"]


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the KV cache
    generated_tokens: int = 0
    time_to_first_token: float = 0.0  # seconds
    tokens_per_second: float = 0.0
    total_seconds: float = 0.0
    stop_reason: StopReason = "eos"
    context_used: int = 0  # tokens in the context after the reply
    n_ctx: int = 0
    image_tokens: int = 0  # of prompt_tokens, those that are images' embeddings
    # The reply's reasoning: how long it took (first token to "</think>"), and whether the
    # template opened it (the reply starts inside "<think>", its text has only the close tag).
    thinking_seconds: float = 0.0
    opens_thinking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GenerationStats | None:
        if not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
