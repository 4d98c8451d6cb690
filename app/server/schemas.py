"""Request bodies, as the OpenAI spec (and LM Studio's extras) define them.

Unknown fields are accepted and ignored, as clients send many harmless extras ("store",
"metadata", ...); a feature Hearth does not have (the legacy ``functions``, ``n`` above one) is
refused by name, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOPS = 16
MAX_STOP_CHARS = 256  # a stop string is matched against the reply's tail at every token
MAX_MESSAGES = 4096  # parsing and rendering a conversation run before any limit of the model
MAX_LOGIT_BIAS = 1024  # entries; each is copied into the sampler chain on the decode thread
MAX_TOKEN_ID_DIGITS = 10
OverflowPolicy = Literal["stopAtLimit", "rollingWindow"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=512)
    ttl: float | None = Field(default=None, gt=0)  # LM Studio: idle seconds before a JIT unload


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class _Generation(_Request):
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=2**31 - 1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repeat_penalty: float | None = Field(default=None, gt=0, le=10)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    logit_bias: dict[str, float] | None = Field(default=None, max_length=MAX_LOGIT_BIAS)
    n: int = 1  # several choices per request: not yet
    user: str | None = None
    # What to do when the prompt does not fit the context (LM Studio's "Context Overflow
    # Policy"): "stopAtLimit" answers 400; "rollingWindow" drops the oldest turns.
    context_overflow_policy: OverflowPolicy = "stopAtLimit"

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences")
        if any(not s for s in stops):
            raise ValueError("a stop sequence cannot be empty")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"a stop sequence has at most {MAX_STOP_CHARS} characters")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key, bias in (value or {}).items():
            token = key.strip()
            # isdigit() alone takes "²" and 5,000-digit keys, which int() then refuses.
            if not (token.isascii() and token.isdecimal()
                    and len(token) <= MAX_TOKEN_ID_DIGITS):
                raise ValueError(f"keys are token ids, not {key[:40]!r}")
            if not -100 <= bias <= 100:
                raise ValueError("biases lie between -100 and 100")
        return value

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported (one choice per request); send several "
                             "requests instead, they run in parallel")
        return value

    def stop_list(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class TextPart(BaseModel):
    """A content part: ``{"type": "text", "text"}`` or ``{"type": "image_url", "image_url":
    {"url": "data:image/png;base64,…"}}`` (checked in `app.server.image_parts`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    image_url: dict[str, Any] | str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(default=None, max_length=64)
    tool_calls: list[Any] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=128)


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None  # checked in `tool_calls.tool_request`, naming the field
    functions: list[Any] | None = None
    function_call: Any = None


class CompletionRequest(_Generation):
    prompt: str | list[str] | list[int] = Field(union_mode="left_to_right")
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None
    response_format: dict[str, Any] | None = None
    best_of: int | None = None

    @field_validator("best_of")
    @classmethod
    def _one_best(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only best_of=1 is supported")
        return value


class EmbeddingRequest(_Request):
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=512)
    ttl: float | None = Field(default=None, gt=0)


class UnloadRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=512)
