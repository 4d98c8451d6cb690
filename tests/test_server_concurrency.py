"""Many clients at once: each gets its own reply, and one that leaves frees its slot."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model

NO_END = {"2": -100, "4": -100}  # the tiny models' </s> and <|im_end|>: replies run full length


@pytest.fixture(scope="module")
def long_server_model(tmp_path_factory):
    """A tiny chat model with an 8192-token context: a reply of 8000 tokens takes seconds."""
    return build_tiny_model(tmp_path_factory.mktemp("long") / "tiny-long.gguf", dtype="f16",
                            n_ctx_train=8192, chat_template=CHATML_TEMPLATE, name="tiny-long")


@pytest.fixture
def long_server(make_hearth_server, long_server_model):
    return make_hearth_server(models=[long_server_model])


def _busy(server, key: str) -> int:
    return next(m.busy_slots for m in server.pool.models() if m.key == key)


def _wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_client_leaving_mid_stream_frees_its_slot(long_server):
    hearth_server = long_server
    body = {"model": hearth_server.model, "max_tokens": 8000, "stream": True,
            "logit_bias": NO_END, "messages": [{"role": "user", "content": "hello"}]}
    with httpx.stream("POST", f"{hearth_server.base_url}/v1/chat/completions", json=body,
                      timeout=60) as response:
        lines = response.iter_lines()
        received = [line for line, _ in zip(lines, range(6), strict=False) if line]
        assert len(received) >= 2
        assert _busy(hearth_server, hearth_server.model) == 1
    # Freed at the next decode step, long before its 8000 tokens could have been generated.
    assert _wait_until(lambda: _busy(hearth_server, hearth_server.model) == 0, timeout=2.0)
    assert _wait_until(lambda: bool(hearth_server.log.entries()))
    entry = hearth_server.log.entries()[-1]
    assert entry.path == "/v1/chat/completions" and entry.model == hearth_server.model


def test_a_client_leaving_before_a_plain_reply_frees_its_slot(long_server):
    hearth_server = long_server
    body = {"model": hearth_server.model, "max_tokens": 8000, "logit_bias": NO_END,
            "messages": [{"role": "user", "content": "hello"}]}
    try:
        response = httpx.post(f"{hearth_server.base_url}/v1/chat/completions", json=body,
                              timeout=1.0)
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError(f"came back within a second: {response.text[:300]}")
    assert _wait_until(lambda: _busy(hearth_server, hearth_server.model) == 0, timeout=3.0)
    # The request log says the client left (499), not that it was answered.
    assert _wait_until(lambda: [e.status for e in hearth_server.log.entries()] == [499],
                       timeout=3.0)


def test_eight_concurrent_clients_each_get_their_own_reply(hearth_server):
    client = hearth_server.client

    def ask(seed: int) -> tuple[str, str]:
        reply = client.chat.completions.create(
            model=hearth_server.model, max_tokens=3, seed=seed, temperature=1.0,
            logit_bias=NO_END,
            messages=[{"role": "user", "content": f"question {seed}"}])
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage.completion_tokens == 3
        return reply.id, reply.choices[0].message.content

    with ThreadPoolExecutor(8) as executor:
        together = list(executor.map(ask, range(8)))
    assert len({reply_id for reply_id, _ in together}) == 8
    # Each is the reply its own request gets when it runs alone (same seed, same prompt).
    for seed in (0, 5):
        assert ask(seed)[1] == together[seed][1]
    assert _busy(hearth_server, hearth_server.model) == 0


def test_two_models_loaded_and_asked_at_once(make_hearth_server, tiny_chat_model, tiny_model):
    server = make_hearth_server(models=[tiny_chat_model, tiny_model])
    chat_id, plain_id = server.models

    def ask(model: str) -> str:
        reply = server.client.chat.completions.create(
            model=model, max_tokens=3, seed=1,
            messages=[{"role": "user", "content": "hello"}])
        assert reply.choices[0].message.content
        return reply.model

    with ThreadPoolExecutor(4) as executor:
        answered = list(executor.map(ask, [chat_id, plain_id, chat_id, plain_id]))
    assert answered == [chat_id, plain_id, chat_id, plain_id]
    states = {m["id"]: m["state"] for m in
              httpx.get(f"{server.base_url}/api/v0/models").json()["data"]}
    assert states[chat_id] == states[plain_id] == "loaded"
