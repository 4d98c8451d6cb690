"""Which models the server offers, loading one just in time, and explicit load/unload."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.engine.gguf.info import read_model_info


def test_v1_models_lists_the_library_in_openai_shape(hearth_server):
    listed = hearth_server.client.models.list()
    ids = [m.id for m in listed.data]
    assert hearth_server.model in ids
    assert all(m.object == "model" and m.owned_by == "hearth" for m in listed.data)
    assert hearth_server.client.models.retrieve(hearth_server.model).id == hearth_server.model


def test_api_v0_models_describes_state_type_arch_quant_and_context(hearth_server):
    response = httpx.get(f"{hearth_server.base_url}/api/v0/models")
    entry = next(m for m in response.json()["data"] if m["id"] == hearth_server.model)
    assert entry["state"] == "loaded"
    assert entry["type"] == "llm"
    assert entry["arch"] == "llama"
    assert entry["quantization"] == "F16"
    assert entry["max_context_length"] == 512
    assert entry["loaded_context_length"] == 512 and entry["busy_slots"] == 0
    one = httpx.get(f"{hearth_server.base_url}/api/v0/models/{hearth_server.model}").json()
    assert one == entry
    health = httpx.get(f"{hearth_server.base_url}/health").json()
    assert health["status"] == "ok" and health["models_loaded"] == 1


def test_a_library_model_loads_just_in_time_once(make_hearth_server, hearth_store, tiny_model):
    hearth_store.add_model_file(read_model_info(tiny_model))
    server = make_hearth_server(models=[])
    model_id = tiny_model.name.removesuffix(".gguf")
    models = {m["id"]: m for m in httpx.get(f"{server.base_url}/api/v0/models").json()["data"]}
    assert models[model_id]["state"] == "not-loaded"
    assert models[model_id]["quantization"] == "F32"

    def ask(_: int) -> str:
        return server.client.chat.completions.create(
            model=model_id, max_tokens=2, extra_body={"ttl": 300},
            messages=[{"role": "user", "content": "hello"}]).model

    with ThreadPoolExecutor(3) as executor:  # three first requests at once: one copy loads
        assert list(executor.map(ask, range(3))) == [model_id] * 3
    loaded = server.pool.models()
    assert [m.key for m in loaded] == [model_id]
    assert loaded[0].jit and loaded[0].ttl_s == 300
    entry = httpx.get(f"{server.base_url}/api/v0/models/{model_id}").json()
    assert entry["state"] == "loaded" and entry["jit"] is True


def test_explicit_load_and_unload(make_hearth_server, hearth_store, tiny_model):
    hearth_store.add_model_file(read_model_info(tiny_model))
    server = make_hearth_server()
    model_id = tiny_model.name.removesuffix(".gguf")
    loaded = httpx.post(f"{server.base_url}/api/v0/models/load", json={"model": model_id},
                        timeout=60)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["state"] == "loaded" and loaded.json()["jit"] is False
    assert {m.key for m in server.pool.models()} == {model_id, server.model}
    unloaded = httpx.post(f"{server.base_url}/api/v0/models/unload", json={"model": model_id})
    assert unloaded.json() == {"id": model_id, "object": "model", "state": "not-loaded"}
    assert [m.key for m in server.pool.models()] == [server.model]
    again = httpx.post(f"{server.base_url}/api/v0/models/unload", json={"model": model_id})
    assert again.status_code == 400 and again.json()["error"]["code"] == "model_not_loaded"


def test_a_broken_library_file_is_a_clear_error(make_hearth_server, hearth_store, tmp_path,
                                               tiny_model):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_model.read_bytes())
    hearth_store.add_model_file(read_model_info(broken))
    broken.write_bytes(broken.read_bytes()[:5000])  # truncated after it was indexed
    server = make_hearth_server(models=[])
    response = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=60, json={
        "model": "broken", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "model" and error["code"] == "model_load_failed"
    assert "broken" in error["message"]


def _wait_for_entries(log, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(log.entries()) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_request_log_records_each_request_within_its_bound(make_hearth_server):
    from app.server.request_log import RequestLog

    server = make_hearth_server()
    server.client.chat.completions.create(
        model=server.model, max_tokens=2, messages=[{"role": "user", "content": "hi"}])
    httpx.get(f"{server.base_url}/v1/nowhere")
    _wait_for_entries(server.log, 2)  # an entry is written just after its answer is sent
    chat, missing = server.log.entries()[-2:]
    assert (chat.path, chat.status, chat.model) == ("/v1/chat/completions", 200, server.model)
    assert chat.prompt_tokens > 0 and chat.completion_tokens >= 1
    assert chat.tokens_per_second > 0
    assert (missing.path, missing.status, missing.model) == ("/v1/nowhere", 404, None)
    bounded = RequestLog(size=3)
    heard = []
    bounded.subscribe(heard.append)
    server.log.subscribe(bounded.add)
    for _ in range(5):
        httpx.get(f"{server.base_url}/health")
    _wait_for_entries(server.log, 7)
    assert len(bounded.entries()) == 3 and len(heard) == 5


@pytest.mark.starter
def test_the_starter_is_served_by_name(make_hearth_server, hearth_store, starter_model):
    hearth_store.add_model_file(read_model_info(starter_model), "starter")
    server = make_hearth_server(models=[])
    reply = server.client.completions.create(model="starter", prompt="Monday, Tuesday, Wednesday,",
                                             max_tokens=3, temperature=0)
    assert reply.model == "starter"
    assert "Thursday" in reply.choices[0].text, reply.choices[0].text
