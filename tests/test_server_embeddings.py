"""POST /v1/embeddings with the real all-MiniLM-L6-v2: vectors that carry meaning."""

from __future__ import annotations

import httpx
import numpy as np
import pytest


@pytest.fixture
def embedding_server(make_hearth_server, embedding_model):
    return make_hearth_server(models=[embedding_model])


def test_embeddings_carry_meaning_in_the_spec_shape(embedding_server):
    server = embedding_server
    texts = ["a cat sits on the mat", "a kitten lies on a rug", "stock markets fell"]
    # The official client asks for base64 and decodes it.
    reply = server.client.embeddings.create(model=server.model, input=texts)
    assert reply.object == "list" and reply.model == server.model
    assert [d.index for d in reply.data] == [0, 1, 2]
    cat, kitten, stocks = (np.array(d.embedding) for d in reply.data)
    assert cat.shape == (384,)
    for vector in (cat, kitten, stocks):
        assert abs(np.linalg.norm(vector) - 1.0) < 1e-3
    assert cat @ kitten > cat @ stocks + 0.2
    assert reply.usage.prompt_tokens == reply.usage.total_tokens > 10
    floats = httpx.post(f"{server.base_url}/v1/embeddings", timeout=60, json={
        "model": server.model, "input": texts[0], "encoding_format": "float"}).json()
    assert len(floats["data"]) == 1
    # Alone or in a batch, the same text embeds alike (llama.cpp batches differ in rounding).
    assert float(np.array(floats["data"][0]["embedding"]) @ cat) > 0.9999


def test_embedding_errors_name_the_input(embedding_server):
    server = embedding_server
    url = f"{server.base_url}/v1/embeddings"
    too_long = "word " * 3000
    response = httpx.post(url, timeout=60,
                          json={"model": server.model, "input": ["fine", too_long]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("input[1]", "context_length_exceeded")
    assert error["message"].startswith("'input[1]' has 3002 tokens, more than the 512 ")
    alone = httpx.post(url, timeout=60, json={"model": server.model, "input": too_long})
    assert alone.status_code == 400 and alone.json()["error"]["param"] == "input"
    for body, param in (({"input": []}, "input"), ({"input": ["ok", ""]}, "input[1]"),
                        ({"input": "x", "dimensions": 8}, "dimensions"),
                        ({"input": "x", "encoding_format": "int8"}, "encoding_format")):
        response = httpx.post(url, timeout=60, json={"model": server.model, **body})
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == param
    chat = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=60, json={
        "model": server.model, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 400 and "/v1/embeddings" in chat.json()["error"]["message"]
    entry = httpx.get(f"{server.base_url}/api/v0/models/{server.model}").json()
    assert entry["type"] == "embeddings" and entry["arch"] == "bert"


def test_a_wrong_kind_request_is_refused_without_loading_the_model(embedding_server):
    server = embedding_server
    assert server.pool.unload(server.model) and server.pool.models() == []
    chat = httpx.post(f"{server.base_url}/v1/chat/completions", timeout=60, json={
        "model": server.model, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 400 and chat.json()["error"]["code"] == "model_wrong_type"
    assert server.pool.models() == []  # nothing was loaded just to be refused
