"""The `hearth_server` fixtures: Hearth's real OpenAI-compatible server on an ephemeral port.

``hearth_server`` serves the tiny chat model (`tiny_chat_model`, loaded, id ``HearthServer.model``)
on 127.0.0.1 and gives its base URL, the `ServerRunner`, the pool, the request log and a ready
``openai.OpenAI`` client. ``make_hearth_server(config=..., models=[paths])`` makes more (API
keys, CORS origins, other models); every server it made is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class HearthServer:
    base_url: str  # "http://127.0.0.1:PORT" (the OpenAI API lives under /v1)
    runner: Any  # app.server.runner.ServerRunner
    client: Any  # openai.OpenAI, with the server's first API key when it has one
    pool: Any  # app.engine.serving.pool.ModelPool
    log: Any  # app.server.request_log.RequestLog
    models: list[str]  # ids of the models loaded at start, in the order given

    @property
    def model(self) -> str:
        return self.models[0]


@pytest.fixture
def make_hearth_server(hearth_store: Any, tiny_chat_model: Path
                       ) -> Iterator[Callable[..., HearthServer]]:
    from dataclasses import replace

    import openai

    from app.engine.gguf.info import read_model_info
    from app.engine.serving.pool import ModelPool
    from app.server.app_factory import create_app
    from app.server.config import ServerConfig
    from app.server.request_log import RequestLog
    from app.server.runner import ServerRunner
    from app.services.serving import ModelCatalog

    made: list[HearthServer] = []

    def make(config: ServerConfig | None = None, *,
             models: Sequence[str | Path] | None = None) -> HearthServer:
        config = replace(config or ServerConfig(), port=0)
        catalog = ModelCatalog(hearth_store)
        pool = ModelPool()
        ids = []
        log = RequestLog()
        try:  # a model that fails to load, or a server that fails to start, leaks no pool
            for path in (tiny_chat_model,) if models is None else models:
                if hearth_store.get_model_file_by_path(Path(path)) is None:
                    hearth_store.add_model_file(read_model_info(path))
                servable = catalog.add_path(path)
                pool.load(servable.id, servable.path, catalog.load_settings(servable),
                          kind=servable.kind)
                ids.append(servable.id)
            runner = ServerRunner(create_app(pool, catalog, config, log), config)
            runner.start()
        except BaseException:
            pool.shutdown()
            raise
        key = config.api_keys[0] if config.api_keys else "no-key-needed"
        client = openai.OpenAI(base_url=f"{runner.url}/v1", api_key=key, max_retries=0,
                               timeout=120)
        server = HearthServer(runner.url, runner, client, pool, log, ids)
        made.append(server)
        return server

    yield make

    for server in made:
        server.client.close()
        server.runner.stop()
        server.pool.shutdown()


@pytest.fixture
def hearth_server(make_hearth_server: Callable[..., HearthServer]) -> HearthServer:
    return make_hearth_server()
