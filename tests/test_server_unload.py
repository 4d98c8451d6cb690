"""POST /api/v0/models/unload of a copy the window shares: by any id that names it, and after."""

from __future__ import annotations

import queue

import httpx

from app.engine.gguf.info import read_model_info
from app.engine.inference.events import Done, Failed, Loaded, Unloaded
from app.engine.serving.host import EngineHost
from app.engine.types import ChatMessage, LoadSettings
from app.services.serving import ModelCatalog


def test_unloading_a_shared_copy_by_its_api_id_frees_it(make_hearth_server, hearth_store,
                                                        tiny_model):
    hearth_store.add_model_file(read_model_info(tiny_model))
    server = make_hearth_server(models=[])
    model_id = tiny_model.name.removesuffix(".gguf")
    catalog = ModelCatalog(hearth_store)
    # The window chats with the file under a key of its own; an API request for the same file
    # with the same settings is served by that copy.
    server.pool.load(str(tiny_model), tiny_model, catalog.load_settings(catalog.find(model_id)))
    reply = server.client.chat.completions.create(
        model=model_id, max_tokens=2, messages=[{"role": "user", "content": "hello"}])
    assert reply.usage.completion_tokens >= 1
    assert [m.key for m in server.pool.models()] == [str(tiny_model)]  # one copy
    entry = httpx.get(f"{server.base_url}/api/v0/models/{model_id}").json()
    assert entry["state"] == "loaded"
    listed = {m["id"]: m for m in httpx.get(f"{server.base_url}/api/v0/models").json()["data"]}
    assert listed[model_id]["state"] == "loaded"

    unloaded = httpx.post(f"{server.base_url}/api/v0/models/unload", json={"model": model_id})
    assert unloaded.status_code == 200, unloaded.text
    assert unloaded.json() == {"id": model_id, "object": "model", "state": "not-loaded"}
    assert server.pool.models() == []  # what it says is so: the memory is given back
    entry = httpx.get(f"{server.base_url}/api/v0/models/{model_id}").json()
    assert entry["state"] == "not-loaded"
    again = httpx.post(f"{server.base_url}/api/v0/models/unload", json={"model": model_id})
    assert again.status_code == 400 and again.json()["error"]["code"] == "model_not_loaded"


def test_the_window_is_told_when_the_api_unloads_its_model(make_hearth_server, hearth_store,
                                                           tiny_model):
    hearth_store.add_model_file(read_model_info(tiny_model))
    server = make_hearth_server(models=[])
    model_id = tiny_model.name.removesuffix(".gguf")
    events: queue.Queue = queue.Queue()
    host = EngineHost(events.put, server.pool, model_key=lambda _path: model_id)
    try:
        def wait_for(job_id: int, kinds: tuple[type, ...]):
            while True:
                event = events.get(timeout=60)
                if event.job_id == job_id and isinstance(event, kinds):
                    return event

        assert isinstance(wait_for(host.load(tiny_model, LoadSettings(n_ctx=256)),
                                   (Loaded, Failed)), Loaded)
        unloaded = httpx.post(f"{server.base_url}/api/v0/models/unload",
                              json={"model": model_id})
        assert unloaded.status_code == 200 and server.pool.models() == []
        # The window still holds the model it loaded: its next message fails with a message,
        # where reading the freed model would have crashed the whole app.
        failed = wait_for(host.chat([ChatMessage("user", "hello")]), (Done, Failed))
        assert isinstance(failed, Failed)
        assert failed.message == f"{tiny_model.name} was unloaded. Load it again to use it."
        gone = wait_for(failed.job_id, (Unloaded,))  # the chat page then shows no model
        assert gone.path == str(tiny_model) and host.loaded_path is None
    finally:
        host.shutdown()
