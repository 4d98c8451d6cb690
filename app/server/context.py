"""What every route reaches: the pool, the catalog of servable models, the config, the log."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.engine.serving.pool import ModelPool
from app.server.config import ServerConfig
from app.server.request_log import RequestLog
from app.services.serving import ModelCatalog


@dataclass
class ServerContext:
    pool: ModelPool
    catalog: ModelCatalog
    config: ServerConfig
    log: RequestLog


def server_context(request: Request) -> ServerContext:
    return request.app.state.hearth
