"""POST /v1/completions: a raw text prompt (no chat template), streamed or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from app.engine.inference.context_window import ContextOverflow, fit_text, fits, reply_reserve
from app.engine.serving.jobs import Piece, TokenLogprob
from app.engine.serving.loaded_model import LoadedModel
from app.server.context import server_context
from app.server.errors import invalid
from app.server.generation import (
    build_job,
    finish_reason,
    new_id,
    now,
    overflow_error,
    reject_unsupported_completion,
    usage,
)
from app.server.model_access import model_for
from app.server.request_log import note
from app.server.response_format import response_grammar
from app.server.schemas import CompletionRequest
from app.server.streaming import Running, SequenceStream, collect, sse_reply

router = APIRouter()


def _prompt_tokens(req: CompletionRequest, model: LoadedModel) -> list[int]:
    prompt = req.prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        vocab = model.vocab_size()
        bad = next((t for t in prompt if not 0 <= int(t) < vocab), None)
        if bad is not None:
            raise invalid("prompt", f"Invalid 'prompt': token id {bad} is not in this "
                                    f"model's vocabulary (0–{vocab - 1}).")
        return [int(t) for t in prompt]
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise invalid("prompt", "Send one prompt per request (a string, or a list of one "
                                    "string); several prompts at once are not supported yet.")
        prompt = prompt[0]
    return model.text_tokens(str(prompt))


def _fit(tokens: list[int], model: LoadedModel, rolling_window: bool,
         max_tokens: int | None) -> list[int]:
    """Without a rolling window a prompt must leave the reply one token, else a 400. With one,
    its oldest tokens go to leave the reply its room (`reply_reserve`, as the chat's rolling
    window and the window's chat do), keeping the model's BOS when the prompt starts with it."""
    if not rolling_window:
        if not fits(len(tokens), model.n_ctx):
            raise overflow_error(len(tokens), model.n_ctx, model.key, "prompt")
        return tokens
    try:
        return fit_text(tokens, model.n_ctx, reply_reserve(model.n_ctx, max_tokens),
                        model.bos_token())
    except ContextOverflow as exc:
        raise overflow_error(exc.prompt_tokens, model.n_ctx, model.key, "prompt") from exc


def _prompt(req: CompletionRequest, model: LoadedModel) -> list[int]:
    """The request's prompt tokenized and fitted (off the event loop: long text takes time)."""
    return _fit(_prompt_tokens(req, model), model,
                req.context_overflow_policy == "rollingWindow", req.max_tokens)


def completion_logprobs(logprobs: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """OpenAI's completion logprobs; ``offset``: where the first token's text starts in the
    whole completion (streamed chunks continue the count)."""
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return {"tokens": [lp.token for lp in logprobs],
            "token_logprobs": [lp.logprob for lp in logprobs],
            "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in logprobs],
            "text_offset": offsets}


@router.post("/v1/completions", response_model=None)
async def completions(req: CompletionRequest, request: Request) -> Any:
    ctx = server_context(request)
    reject_unsupported_completion(req)
    grammar = response_grammar(req.response_format)
    model = await model_for(ctx, req.model, "llm", req.ttl)
    note(request.state, model=model.key)
    tokens = await asyncio.to_thread(_prompt, req, model)
    job = build_job(req, model, tokens, max_tokens=req.max_tokens, stop=[],
                    top_logprobs=req.logprobs, grammar=grammar)
    running = Running(model, job, "prompt")
    note(request.state, prompt_tokens=len(tokens))
    reply_id, created = new_id("cmpl"), now()
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        chunks = _chunks(running, request, reply_id, created, model.key,
                         req.logprobs is not None, include_usage)
        return SequenceStream(chunks, running.handle)
    pieces, finished = await collect(running, request)
    logprobs = None
    if req.logprobs is not None:
        logprobs = completion_logprobs([lp for p in pieces for lp in p.logprobs])
    return {
        "id": reply_id, "object": "text_completion", "created": created, "model": model.key,
        "system_fingerprint": None,
        "choices": [{"index": 0, "text": finished.text, "logprobs": logprobs,
                     "finish_reason": finish_reason(finished)}],
        "usage": usage(finished),
    }


def _chunks(running: Running, request: Request, reply_id: str, created: int, model: str,
            logprobs: bool, include_usage: bool) -> AsyncIterator[bytes]:
    def choice(text: str, finish: str | None = None,
               lps: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"index": 0, "text": text, "logprobs": lps, "finish_reason": finish}

    sent = [0]  # characters of the completion streamed so far: text_offset runs across chunks

    def piece(event: Piece) -> list[dict[str, Any]]:
        if not (event.text or event.logprobs):
            return []
        lps = completion_logprobs(list(event.logprobs), sent[0]) if logprobs else None
        if lps is not None and event.logprobs:
            sent[0] = lps["text_offset"][-1] + len(event.logprobs[-1].token)
        return [choice(event.text, lps=lps)]

    envelope = {"id": reply_id, "object": "text_completion", "created": created, "model": model}
    return sse_reply(running, request.state, envelope, include_usage, piece,
                     lambda finish: [choice("", finish)])
