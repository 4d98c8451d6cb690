"""POST /v1/embeddings: L2-normalised vectors from an embedding model."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from app.engine.inference.embedding_runtime import TextTooLong
from app.server.context import server_context
from app.server.errors import invalid
from app.server.generation import LATER
from app.server.model_access import model_for
from app.server.request_log import note
from app.server.schemas import EmbeddingRequest

router = APIRouter()
MAX_INPUTS = 2048  # OpenAI's own limit per request


@router.post("/v1/embeddings")
async def embeddings(req: EmbeddingRequest, request: Request) -> dict[str, Any]:
    ctx = server_context(request)
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    if not texts:
        raise invalid("input", "'input' needs at least one text.")
    if len(texts) > MAX_INPUTS:
        raise invalid("input", f"At most {MAX_INPUTS} texts per request.")
    for i, text in enumerate(texts):
        if not text:
            raise invalid("input" if isinstance(req.input, str) else f"input[{i}]",
                          "Texts to embed cannot be empty.")
    if req.dimensions is not None:
        raise invalid("dimensions", f"Shortened embeddings ('dimensions') {LATER}.",
                      "unsupported_parameter")
    model = await model_for(ctx, req.model, "embeddings", req.ttl)
    note(request.state, model=model.key)
    try:
        embedded = await asyncio.to_thread(model.embed, texts)
    except TextTooLong as exc:
        param = "input" if isinstance(req.input, str) else f"input[{exc.index}]"
        raise invalid(param, f"'{param}' has {exc.tokens} tokens, more than the {exc.n_ctx} "
                      f"the context of '{model.key[:200]}' holds.",
                      "context_length_exceeded") from exc
    tokens = embedded.total_tokens
    note(request.state, prompt_tokens=tokens)
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
            for i, v in enumerate(embedded.vectors)]
    return {"object": "list", "data": data, "model": model.key,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai client asks for by default: float32, little-endian
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
