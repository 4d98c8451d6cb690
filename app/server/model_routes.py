"""Which models this server offers: OpenAI's /v1/models, LM Studio's /api/v0/models (with
state, type, architecture, quantization, context), explicit load/unload, and /health.

A model that reads images (it loads with a vision projector) is marked the way the local servers
clients know do it: ``"capabilities": ["vision"]`` on both listings (Ollama's word, a list so
more can join it), and LM Studio's ``"type": "vlm"`` on /api/v0/models."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from app.engine.serving.pool import ServedModel
from app.server.context import ServerContext, server_context
from app.server.errors import ApiError
from app.server.model_access import find_servable, load_servable, unknown_model
from app.server.request_log import note
from app.server.schemas import LoadRequest, UnloadRequest
from app.services.serving import ServableModel, model_kind

router = APIRouter()


def _entries(ctx: ServerContext) -> list[dict[str, Any]]:
    served_models = ctx.pool.models()
    # An id that is another key of a model loaded under its own is served by it: loaded too.
    loaded = {key: m for m in served_models for key in (*m.aliases, m.key)}
    entries: dict[str, dict[str, Any]] = {}
    servables = ctx.catalog.models()
    vision = ctx.catalog.vision(servables)
    for servable in servables:
        entries[servable.id] = _entry(servable, loaded.get(servable.id),
                                      servable.id in vision)
    for served in served_models:  # loaded by a front end under a key of its own
        if served.key not in entries:
            entries[served.key] = _loaded_entry(served)
    return list(entries.values())


def _capabilities(vision: bool) -> dict[str, Any]:
    return {"capabilities": ["vision"] if vision else []}


def _entry(servable: ServableModel, served: ServedModel | None, vision: bool
           ) -> dict[str, Any]:
    if served is not None:  # what a request gets is the loaded copy, with or without one
        vision = served.projector_path is not None
    entry = {"id": servable.id, "object": "model",
             "type": "vlm" if vision else servable.kind,
             "publisher": "hearth", "arch": servable.architecture,
             "compatibility_type": "gguf", "quantization": servable.quantization,
             "state": "not-loaded", "max_context_length": servable.max_context,
             **_capabilities(vision)}
    if served is not None:
        entry.update(_loaded_fields(served))
    return entry


def _loaded_entry(served: ServedModel) -> dict[str, Any]:
    info = served.info
    vision = served.projector_path is not None
    return {"id": served.key, "object": "model",
            "type": "vlm" if vision else model_kind(info.architecture),
            "publisher": "hearth", "arch": info.architecture, "compatibility_type": "gguf",
            "quantization": info.file_type, "max_context_length": info.context_length,
            **_capabilities(vision), **_loaded_fields(served)}


def _loaded_fields(served: ServedModel) -> dict[str, Any]:
    return {"state": "loaded", "loaded_context_length": served.n_ctx,
            "parallel": served.parallel, "busy_slots": served.busy_slots,
            "memory_bytes": served.memory_bytes, "jit": served.jit, "ttl": served.ttl_s}


def _openai(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry["id"], "object": "model", "created": 0, "owned_by": "hearth",
            "capabilities": entry["capabilities"]}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    entries = await asyncio.to_thread(_entries, server_context(request))
    return {"object": "list", "data": [_openai(e) for e in entries]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    return _openai(await _one(request, model_id))


@router.get("/api/v0/models")
async def list_models_v0(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": await asyncio.to_thread(_entries, server_context(request))}


@router.get("/api/v0/models/{model_id:path}")
async def get_model_v0(model_id: str, request: Request) -> dict[str, Any]:
    return await _one(request, model_id)


async def _one(request: Request, model_id: str) -> dict[str, Any]:
    """The entry of exactly this id, built alone (the catalog looks the id up, lists nothing)."""
    ctx = server_context(request)
    served = next((m for m in ctx.pool.models() if model_id in (m.key, *m.aliases)), None)
    servable = await asyncio.to_thread(ctx.catalog.get, model_id)
    if servable is not None:
        vision = await asyncio.to_thread(ctx.catalog.vision, [servable])
        return _entry(servable, served, servable.id in vision)
    if served is not None:  # loaded by a front end under a key of its own
        return _loaded_entry(served)
    raise unknown_model(model_id)


@router.post("/api/v0/models/load")
async def load_model(req: LoadRequest, request: Request) -> dict[str, Any]:
    """Load explicitly: stays until unloaded (a ``ttl`` makes it a just-in-time model)."""
    ctx = server_context(request)
    note(request.state, model=req.model)
    if ctx.pool.get(req.model) is None:
        servable = await find_servable(ctx, req.model)
        await load_servable(ctx, servable, jit=req.ttl is not None, ttl_s=req.ttl)
        model_id = servable.id
    else:
        model_id = req.model
    return await _one(request, model_id)


@router.post("/api/v0/models/unload")
async def unload_model(req: UnloadRequest, request: Request) -> dict[str, Any]:
    ctx = server_context(request)
    note(request.state, model=req.model)
    key = req.model
    loaded = ctx.pool.get(key)
    if loaded is None:
        servable = await asyncio.to_thread(ctx.catalog.find, key)
        if servable is None:
            raise unknown_model(key)
        loaded = ctx.pool.get(servable.id)
        if loaded is None:
            raise _not_loaded(key)
        key = servable.id
    # By its own key, not the name asked for: a name that is only another key of a model loaded
    # under its own (the window's, say) would merely be forgotten, and the model would stay.
    await asyncio.to_thread(ctx.pool.unload, loaded.key)
    return {"id": key, "object": "model", "state": "not-loaded"}


def _not_loaded(model_id: str) -> ApiError:
    return ApiError(400, f"The model '{model_id[:200]}' is not loaded.", param="model",
                    code="model_not_loaded")


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    models = server_context(request).pool.models()
    return {"status": "ok", "models_loaded": len(models),
            "busy_slots": sum(m.busy_slots for m in models)}
