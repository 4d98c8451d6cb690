"""POST /v1/chat/completions, streamed or not, in OpenAI's shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response

from app.engine.serving.jobs import Piece, TokenLogprob
from app.server.chat_prompt import chat_messages, fit_chat
from app.server.context import server_context
from app.server.generation import (
    build_job,
    finish_reason,
    new_id,
    now,
    reject_unsupported_chat,
    usage,
)
from app.server.model_access import model_for
from app.server.request_log import note, note_finished
from app.server.schemas import ChatCompletionRequest
from app.server.streaming import ClientGone, Running, SequenceStream, collect, sse_reply

router = APIRouter()


def logprob_content(logprobs: tuple[TokenLogprob, ...] | list[TokenLogprob]
                    ) -> list[dict[str, Any]]:
    return [{"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.bytes),
             "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)}
                              for t in lp.top]}
            for lp in logprobs]


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> Any:
    ctx = server_context(request)
    reject_unsupported_chat(req)
    turns = chat_messages(req.messages)
    model = await model_for(ctx, req.model, "llm", req.ttl)
    note(request.state, model=model.key)
    prompt = await asyncio.to_thread(fit_chat, model, turns,
                                     req.context_overflow_policy == "rollingWindow")
    job = build_job(req, model, prompt.tokens,
                    max_tokens=req.max_completion_tokens or req.max_tokens, stop=prompt.stop,
                    top_logprobs=(req.top_logprobs or 0) if req.logprobs else None)
    running = Running(model, job, "messages")
    note(request.state, prompt_tokens=len(prompt.tokens))
    reply_id, created = new_id("chatcmpl"), now()
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        chunks = _chunks(running, request, reply_id, created, model.key, req.logprobs,
                         include_usage)
        return SequenceStream(chunks, running.handle)
    try:
        pieces, finished = await collect(running, request.receive)
    except ClientGone:
        return Response(status_code=499)
    note_finished(request.state, finished)
    logprobs = None
    if req.logprobs:
        logprobs = {"content": logprob_content([lp for p in pieces for lp in p.logprobs]),
                    "refusal": None}
    return {
        "id": reply_id, "object": "chat.completion", "created": created, "model": model.key,
        "system_fingerprint": None,
        "choices": [{"index": 0, "finish_reason": finish_reason(finished), "logprobs": logprobs,
                     "message": {"role": "assistant", "content": finished.text,
                                 "refusal": None}}],
        "usage": usage(finished),
    }


def _chunks(running: Running, request: Request, reply_id: str, created: int, model: str,
            logprobs: bool, include_usage: bool) -> AsyncIterator[bytes]:
    def choice(delta: dict[str, Any], finish: str | None = None,
               content_logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish,
                "logprobs": None if content_logprobs is None
                else {"content": content_logprobs, "refusal": None}}

    def piece(event: Piece) -> dict[str, Any] | None:
        if not (event.text or event.logprobs):
            return None
        return choice({"content": event.text},
                      content_logprobs=logprob_content(event.logprobs) if logprobs else None)

    envelope = {"id": reply_id, "object": "chat.completion.chunk", "created": created,
                "model": model}
    return sse_reply(running, request.state, envelope, include_usage, piece,
                     lambda finish: choice({}, finish),
                     first_choice=choice({"role": "assistant", "content": ""}))
