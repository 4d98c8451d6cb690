"""A request's model id → a loaded model, loading it just in time when it is servable."""

from __future__ import annotations

import asyncio
from typing import Literal

from app.engine.gguf.info import GGUFError
from app.engine.serving.loaded_model import LoadedModel
from app.engine.serving.pool import DoesNotFit, LoadError
from app.engine.starter import StarterError
from app.server.context import ServerContext
from app.server.errors import ApiError
from app.services.serving import ServableModel


def unknown_model(model_id: str) -> ApiError:
    return ApiError(404, f"The model '{model_id[:200]}' does not exist on this server. "
                         "GET /v1/models lists the models it serves.",
                    param="model", code="model_not_found")


async def find_servable(ctx: ServerContext, model_id: str) -> ServableModel:
    model = await asyncio.to_thread(ctx.catalog.find, model_id)
    if model is None:
        raise unknown_model(model_id)
    return model


async def load_servable(ctx: ServerContext, model: ServableModel, *, jit: bool,
                        ttl_s: float | None) -> LoadedModel:
    def load() -> LoadedModel:
        ready = ctx.catalog.prepare(model)  # assembles the starter on its first use
        return ctx.pool.load(ready.id, ready.path, ctx.catalog.load_settings(ready),
                             kind=ready.kind, jit=jit, ttl_s=ttl_s,
                             projector=ctx.catalog.projector(ready))

    try:
        return await asyncio.to_thread(load)
    except DoesNotFit as exc:
        raise ApiError(503, str(exc), param="model", code="model_does_not_fit",
                       type="server_error") from exc
    except (LoadError, GGUFError, StarterError) as exc:
        raise ApiError(400, f"Model '{model.id}' could not be loaded: {exc}", param="model",
                       code="model_load_failed") from exc


async def model_for(ctx: ServerContext, model_id: str, kind: Literal["llm", "embeddings"],
                    ttl_s: float | None = None) -> LoadedModel:
    """The loaded model for a request, loaded just in time (with its TTL) if it is not yet."""
    loaded = ctx.pool.get(model_id)
    if loaded is None:  # a display name or path asked for before: its id, with no search
        aliased = ctx.catalog.alias(model_id)
        loaded = ctx.pool.get(aliased) if aliased is not None else None
    if loaded is None:
        servable = await find_servable(ctx, model_id)
        # Refused before loading: a wrong-kind request must not load gigabytes for nothing.
        _check_kind(servable.id, servable.kind, kind)
        loaded = ctx.pool.get(servable.id) or await load_servable(
            ctx, servable, jit=True, ttl_s=ttl_s or ctx.config.default_ttl_s)
    _check_kind(loaded.key, loaded.kind, kind)
    return loaded


def _check_kind(model_id: str, actual: str, wanted: str) -> None:
    if actual != wanted:
        what, route = (("an embedding", "/v1/embeddings") if actual == "embeddings"
                       else ("a language", "/v1/chat/completions or /v1/completions"))
        raise ApiError(400, f"'{model_id}' is {what} model; use {route}.",
                       param="model", code="model_wrong_type")
