"""One rule for what fits a model's context: both generation routes and the serving model
refuse the same prompts, and their rolling windows leave the reply its room."""

from __future__ import annotations

import httpx

from app.engine.inference.context_window import fit_text, reply_reserve
from app.engine.types import ChatMessage
from app.server.chat_prompt import fit_chat

LONG = " ".join(["the local model can answer the question"] * 80)  # well over 512 tokens
N_CTX = 512  # the tiny chat model's context in `hearth_server`


def _post(server, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=120)


def _error(response: httpx.Response, param: str) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["param"] == param
    return error["message"]


def test_both_routes_refuse_an_overflow_naming_the_prompt_and_the_context(hearth_server):
    model = hearth_server.pool.get(hearth_server.model)
    chat_tokens = len(model.chat_prompt([ChatMessage("user", LONG)]).tokens)
    text_tokens = len(model.text_tokens(LONG))
    chat = _post(hearth_server, "/v1/chat/completions", {
        "model": hearth_server.model, "max_tokens": 2,
        "messages": [{"role": "user", "content": LONG}]})
    message = _error(chat, "messages")
    assert f"{chat_tokens} tokens" in message and f"{N_CTX} tokens" in message
    text = _post(hearth_server, "/v1/completions",
                 {"model": hearth_server.model, "max_tokens": 2, "prompt": LONG})
    message = _error(text, "prompt")
    assert f"{text_tokens} tokens" in message and f"{N_CTX} tokens" in message


def test_a_prompt_fits_while_it_leaves_the_reply_one_token(hearth_server):
    # The same boundary on the route as in the serving model: n_ctx - 1 tokens still get a reply.
    body = {"model": hearth_server.model, "max_tokens": 5, "temperature": 0}
    longest = _post(hearth_server, "/v1/completions", {**body, "prompt": [1] + [5] * (N_CTX - 2)})
    assert longest.status_code == 200, longest.text
    assert longest.json()["usage"]["prompt_tokens"] == N_CTX - 1
    assert 1 <= longest.json()["usage"]["completion_tokens"] < 5  # cut short by the context
    assert longest.json()["choices"][0]["finish_reason"] == "length"
    one_more = _post(hearth_server, "/v1/completions", {**body, "prompt": [1] + [5] * (N_CTX - 1)})
    assert f"{N_CTX} tokens" in _error(one_more, "prompt")


def test_a_completion_rolling_window_keeps_the_newest_text_and_room_for_the_reply(hearth_server):
    body = {"model": hearth_server.model, "prompt": LONG, "max_tokens": 40, "temperature": 0,
            "context_overflow_policy": "rollingWindow"}
    response = _post(hearth_server, "/v1/completions", body)
    assert response.status_code == 200, response.text
    # As much of the newest text as leaves the asked-for 40 tokens (not half the context).
    assert response.json()["usage"]["prompt_tokens"] == N_CTX - 40


def test_the_text_rolling_window_keeps_bos_only_when_the_model_starts_texts_with_it(
        hearth_server):
    model = hearth_server.pool.get(hearth_server.model)
    tokens = model.text_tokens(LONG)
    bos = model.bos_token()
    assert bos is not None and tokens[0] == bos  # the tiny model adds a BOS to every text
    room = N_CTX - reply_reserve(N_CTX, 40)
    kept = fit_text(tokens, N_CTX, reply_reserve(N_CTX, 40), bos)
    assert kept[0] == bos and kept[1:] == tokens[-(room - 1):]
    # A prompt of token ids that does not start with it, or a model that adds none: plain text.
    assert fit_text(tokens[1:], N_CTX, 40, bos) == tokens[-room:]
    assert fit_text(tokens, N_CTX, 40, None) == tokens[-room:]


def test_a_chat_rolling_window_drops_the_fewest_turns_that_leave_the_reply_its_room(
        hearth_server):
    model = hearth_server.pool.get(hearth_server.model)
    turns = [{"role": "system", "content": "Be brief."}]
    for _ in range(6):
        turns += [{"role": "user", "content": LONG[:600]}, {"role": "assistant", "content": "ok"}]
    turns += [{"role": "user", "content": "hello"}]
    body = {"model": hearth_server.model, "max_tokens": 60, "temperature": 0, "messages": turns,
            "context_overflow_policy": "rollingWindow"}
    response = _post(hearth_server, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    prompt_tokens = response.json()["usage"]["prompt_tokens"]
    assert prompt_tokens + 60 <= N_CTX
    pair = [ChatMessage("user", LONG[:600]), ChatMessage("assistant", "ok")]
    kept = fit_chat(model, [ChatMessage(t["role"], t["content"]) for t in turns], True, 60)
    assert len(kept.tokens) == prompt_tokens
    with_one_more = [ChatMessage("system", "Be brief."), *pair, ChatMessage("user", "hello")]
    while len(model.chat_prompt(with_one_more).tokens) <= prompt_tokens:
        with_one_more[1:1] = pair
    assert len(model.chat_prompt(with_one_more).tokens) + 60 > N_CTX  # one turn more: no room


def test_a_chat_is_rendered_once_when_it_fits_or_has_one_turn(hearth_server, monkeypatch):
    model = hearth_server.pool.get(hearth_server.model)
    renders = []
    real = model.chat_prompt

    def counted(messages, cancelled=None, tools=None):
        renders.append(len(messages))
        return real(messages, cancelled, tools)

    monkeypatch.setattr(model, "chat_prompt", counted)
    fit_chat(model, [ChatMessage("user", "hello")], True, 10)
    assert renders == [1]
    renders.clear()
    response = _post(hearth_server, "/v1/chat/completions", {
        "model": hearth_server.model, "max_tokens": 2, "context_overflow_policy": "rollingWindow",
        "messages": [{"role": "user", "content": LONG}]})
    assert "Even with the oldest part dropped" in _error(response, "messages")
    assert renders == [1]
