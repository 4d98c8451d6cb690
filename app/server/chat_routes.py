"""POST /v1/chat/completions, streamed or not, in OpenAI's shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request

from app.engine.serving.jobs import Piece, TokenLogprob
from app.engine.tools import ToolCallStream
from app.server.chat_prompt import chat_messages, check_vision, fit_chat
from app.server.context import server_context
from app.server.errors import invalid
from app.server.generation import (
    build_job,
    finish_reason,
    new_id,
    now,
    usage,
)
from app.server.image_fetch import fetcher_for
from app.server.model_access import model_for
from app.server.request_log import note
from app.server.response_format import response_grammar
from app.server.schemas import ChatCompletionRequest
from app.server.streaming import Running, SequenceStream, collect, sse_reply
from app.server.tool_calls import call_dicts, delta, reader, tool_plan, tool_request

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
    if req.top_logprobs is not None and not req.logprobs:
        raise invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true.")
    tools = tool_request(req)
    grammar = response_grammar(req.response_format)
    # The messages are checked (web images fetched, if allowed) before a model loads for them,
    # off the event loop.
    turns = await asyncio.to_thread(chat_messages, req.messages, fetcher_for(ctx.config))
    model = await model_for(ctx, req.model, "llm", req.ttl)
    note(request.state, model=model.key)
    await asyncio.to_thread(check_vision, model, turns, ctx.catalog.vision_model_ids)
    plan = tool_plan(model, tools, grammar) if tools else None
    max_tokens = req.max_completion_tokens or req.max_tokens
    prompt = await asyncio.to_thread(fit_chat, model, turns,
                                     req.context_overflow_policy == "rollingWindow", max_tokens,
                                     tools.offered() if tools else None)
    job = build_job(req, model, prompt.tokens, max_tokens=max_tokens, stop=prompt.stop,
                    top_logprobs=(req.top_logprobs or 0) if req.logprobs else None,
                    grammar=plan.grammar if plan else grammar,
                    control_text=plan.control_text if plan else frozenset(),
                    images=prompt.images)
    running = Running(model, job, "messages")
    note(request.state, prompt_tokens=len(prompt.tokens))
    reply_id, created = new_id("chatcmpl"), now()
    calls = reader(plan, prompt.opens_thinking) if plan else None
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        chunks = _chunks(running, request, reply_id, created, model.key, req.logprobs,
                         include_usage, calls)
        return SequenceStream(chunks, running.handle)
    pieces, finished = await collect(running, request)
    logprobs = None
    if req.logprobs:
        logprobs = {"content": logprob_content([lp for p in pieces for lp in p.logprobs]),
                    "refusal": None}
    message: dict[str, Any] = {"role": "assistant", "content": finished.text, "refusal": None}
    reason = finish_reason(finished)
    if calls is not None:
        calls.feed(finished.text)
        calls.finish()
        message["content"] = calls.content or None
        if calls.calls:
            message["tool_calls"] = call_dicts(calls.calls)
            reason = "tool_calls"
    return {
        "id": reply_id, "object": "chat.completion", "created": created, "model": model.key,
        "system_fingerprint": None,
        "choices": [{"index": 0, "finish_reason": reason, "logprobs": logprobs,
                     "message": message}],
        "usage": usage(finished),
    }


def _chunks(running: Running, request: Request, reply_id: str, created: int, model: str,
            logprobs: bool, include_usage: bool,
            calls: ToolCallStream | None) -> AsyncIterator[bytes]:
    def choice(delta: dict[str, Any], finish: str | None = None,
               content_logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "finish_reason": finish,
                "logprobs": None if content_logprobs is None
                else {"content": content_logprobs, "refusal": None}}

    def piece(event: Piece) -> list[dict[str, Any]]:
        lps = logprob_content(event.logprobs) if logprobs and event.logprobs else None
        if calls is None:
            return [choice({"content": event.text}, content_logprobs=lps)] if event.text else (
                [choice({}, content_logprobs=lps)] if lps else [])
        # Markup is held back until the parser knows what it is: a piece may make no delta.
        deltas = [delta(e) for e in calls.feed(event.text)]
        if lps and deltas:
            return [choice(deltas[0], content_logprobs=lps),
                    *(choice(d) for d in deltas[1:])]
        return [choice(d) for d in deltas]

    def end(finish: str) -> list[dict[str, Any]]:
        if calls is None:
            return [choice({}, finish)]
        last = [choice(delta(e)) for e in calls.finish()]
        return [*last, choice({}, "tool_calls" if calls.calls else finish)]

    envelope = {"id": reply_id, "object": "chat.completion.chunk", "created": created,
                "model": model}
    # With tools a reply may be only calls: its content is null, never an empty string.
    first = {"role": "assistant", "content": None if calls is not None else ""}
    return sse_reply(running, request.state, envelope, include_usage, piece, end,
                     first_choice=choice(first))
