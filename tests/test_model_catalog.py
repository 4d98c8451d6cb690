"""The server's model catalog: lookups by id, display name or path reuse one listing of the
library, a name that found a model stays its alias, and /v1/models/{id} is exact."""

from __future__ import annotations

import time

import httpx
import pytest

from app.engine.gguf.info import read_model_info
from app.services.serving import ModelCatalog


@pytest.fixture
def listings(hearth_store, monkeypatch) -> list[int]:
    """Counts the Store's library listings (the real method, counted)."""
    calls: list[int] = []
    real = hearth_store.list_model_files

    def counted():
        calls.append(1)
        return real()

    monkeypatch.setattr(hearth_store, "list_model_files", counted)
    return calls


def _chat(server, model: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/v1/chat/completions", timeout=120, json={
        "model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]})


def test_a_model_asked_for_by_name_or_path_loads_once_without_relisting_the_library(
        make_hearth_server, hearth_store, tiny_model, listings):
    hearth_store.add_model_file(read_model_info(tiny_model))
    server = make_hearth_server()
    listings.clear()  # what the server's start read
    first = _chat(server, "TINY")  # the library's display name, in any case
    assert first.status_code == 200, first.text
    assert first.json()["model"] == "tiny-f32"
    for name in ("TINY", str(tiny_model), "tiny-f32"):  # again, by path, by id
        again = _chat(server, name)
        assert again.status_code == 200 and again.json()["model"] == "tiny-f32"
    assert listings == []  # every lookup came from the catalog's listing
    assert sorted(m.key for m in server.pool.models()) == sorted([server.model, "tiny-f32"])


def test_one_model_by_id_is_exact_and_reads_no_listing(make_hearth_server, hearth_store,
                                                      tiny_model, listings):
    hearth_store.add_model_file(read_model_info(tiny_model))
    server = make_hearth_server()
    listings.clear()
    one = httpx.get(f"{server.base_url}/api/v0/models/tiny-f32")
    assert one.status_code == 200
    assert one.json()["id"] == "tiny-f32" and one.json()["state"] == "not-loaded"
    assert one.json()["quantization"] == "F32"
    assert httpx.get(f"{server.base_url}/v1/models/{server.model}").json()["id"] == server.model
    assert listings == []
    by_name = httpx.get(f"{server.base_url}/v1/models/tiny")  # a display name is not an id
    assert by_name.status_code == 404
    assert by_name.json()["error"]["code"] == "model_not_found"


def test_a_model_added_while_serving_is_found_and_unknown_ids_relist_at_most_once_a_while(
        hearth_store, tiny_model, listings):
    catalog = ModelCatalog(hearth_store)
    catalog.MISS_RELIST_S = 0.5
    assert catalog.find("tiny-f32") is None
    for n in range(20):  # a flood of unknown ids
        assert catalog.find(f"nope-{n}") is None
    assert len(listings) == 1
    hearth_store.add_model_file(read_model_info(tiny_model))  # the window imports a model
    time.sleep(0.6)
    found = catalog.find("tiny-f32")
    assert found is not None and found.path == str(tiny_model)
    assert len(listings) == 2
    assert catalog.get("tiny") is None and catalog.find("tiny") == found
    assert catalog.alias("tiny") == "tiny-f32"
