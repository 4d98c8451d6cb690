"""Build the ASGI app: routes, OpenAI-shaped errors, then the door (security) and the log."""

from __future__ import annotations

from fastapi import FastAPI

from app.engine.serving.pool import ModelPool
from app.server import chat_routes, completion_routes, embedding_routes, model_routes
from app.server.config import ServerConfig
from app.server.context import ServerContext
from app.server.errors import install_error_handlers
from app.server.request_log import RequestLog, RequestLogMiddleware
from app.server.security import SecurityMiddleware
from app.services.serving import ModelCatalog


def create_app(pool: ModelPool, catalog: ModelCatalog, config: ServerConfig | None = None,
               log: RequestLog | None = None) -> FastAPI:
    config = config or ServerConfig()
    # No interactive docs: they would load scripts from a CDN, and nothing leaves the machine.
    app = FastAPI(title="Hearth", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hearth = ServerContext(pool=pool, catalog=catalog, config=config,
                                     log=log or RequestLog())
    install_error_handlers(app)
    for module in (chat_routes, completion_routes, embedding_routes, model_routes):
        app.include_router(module.router)
    # Added last = outermost: the log sees every answer, the door's refusals included.
    app.add_middleware(SecurityMiddleware, config=config)
    app.add_middleware(RequestLogMiddleware, log=app.state.hearth.log)
    return app
