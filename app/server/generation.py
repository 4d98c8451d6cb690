"""OpenAI request fields → the engine's SequenceJob, refusing what Hearth cannot honour yet."""

from __future__ import annotations

import time
import uuid
from typing import Any

from app.engine.serving.jobs import Finished, SequenceJob
from app.engine.serving.loaded_model import LoadedModel
from app.engine.types import Sampling
from app.engine.vision.prompt import ImageSpan
from app.server.errors import ApiError, invalid
from app.server.schemas import CompletionRequest, _Generation

LATER = "arrives in a later Hearth; this server cannot honour it yet"
_SEED_SPACE = 2**32 - 1  # llama.cpp seeds are uint32, and 0xFFFFFFFF means "random"


def reject_unsupported_completion(req: CompletionRequest) -> None:
    if req.echo:
        raise invalid("echo", f"'echo' {LATER}.", "unsupported_parameter")
    if req.suffix:
        raise invalid("suffix", f"'suffix' (fill-in-the-middle) {LATER}.",
                      "unsupported_parameter")


def _sampling(req: _Generation, max_tokens: int) -> Sampling:
    base = Sampling()

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    seed = -1 if req.seed is None else req.seed % _SEED_SPACE
    return Sampling(
        temperature=pick(req.temperature, base.temperature), top_p=pick(req.top_p, base.top_p),
        top_k=pick(req.top_k, base.top_k), min_p=pick(req.min_p, base.min_p),
        repeat_penalty=pick(req.repeat_penalty, base.repeat_penalty), max_tokens=max_tokens,
        seed=seed, stop=req.stop_list())


def _logit_bias(req: _Generation, model: LoadedModel) -> dict[int, float]:
    if not req.logit_bias:
        return {}
    vocab = model.vocab_size()
    bias: dict[int, float] = {}
    for key, value in req.logit_bias.items():
        token = int(key)
        if not 0 <= token < vocab:
            raise invalid("logit_bias", f"Invalid 'logit_bias': token id {token} is not in "
                                        f"this model's vocabulary (0–{vocab - 1}).")
        bias[token] = value
    return bias


def build_job(req: _Generation, model: LoadedModel, tokens: list[int], *,
              max_tokens: int | None, stop: list[str], top_logprobs: int | None,
              grammar: str | None = None, control_text: frozenset[str] = frozenset(),
              images: tuple[ImageSpan, ...] = ()) -> SequenceJob:
    """``images``: where ``tokens`` holds images (`ChatPrompt.images`, a vision model's)."""
    room = max(1, model.n_ctx - len(tokens))
    # No limit asked: until the context is full, as OpenAI's "up to the context length".
    limit = room if max_tokens is None else max_tokens
    return SequenceJob(
        tokens=tokens, sampling=_sampling(req, limit), stop=stop,
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logit_bias=_logit_bias(req, model), top_logprobs=top_logprobs, grammar=grammar,
        control_text=control_text, images=images)


def overflow_error(prompt_tokens: int, n_ctx: int, model: str, param: str,
                   reserve: int = 1) -> ApiError:
    """``reserve`` above one: the rolling window's room for the reply, which it could not make."""
    if reserve > 1:
        return ApiError(
            400, f"Even with the oldest part dropped, this prompt is {prompt_tokens} tokens; "
                 f"model '{model}' holds {n_ctx} tokens per request, {reserve} of them kept for "
                 f"the reply. Shorten the last message or load the model with a longer context.",
            param=param, code="context_length_exceeded")
    return ApiError(
        400, f"This prompt is {prompt_tokens} tokens, but model '{model}' holds {n_ctx} tokens "
             f"per request (the reply needs at least one more). Shorten it, load the model with a "
             f"longer context, or send \"context_overflow_policy\": \"rollingWindow\" to drop the "
             f"oldest turns (or text).", param=param, code="context_length_exceeded")


def finish_reason(finished: Finished) -> str:
    """OpenAI knows two: "stop" (end of turn or a stop string) and "length"."""
    return "length" if finished.reason in ("length", "context") else "stop"


def usage(finished: Finished) -> dict[str, Any]:
    prompt = finished.stats.prompt_tokens
    completion = finished.stats.generated_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            # image_tokens (of prompt_tokens, images' embeddings): Hearth's, beside OpenAI's.
            "prompt_tokens_details": {"cached_tokens": finished.stats.cached_tokens,
                                      "image_tokens": finished.stats.image_tokens}}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def generation_failed(message: str) -> ApiError:
    return ApiError(500, f"Generation failed: {message}", code="generation_failed")
