"""Every bad request is an OpenAI-shaped error with the right status, never a 200 or a 500."""

from __future__ import annotations

import httpx
import openai
import pytest

from app.server.config import ServerConfig

HELLO = [{"role": "user", "content": "hello"}]


def _post(server, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=60)


def _assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param, error
    return error


CHAT_FIELD_ERRORS = [
    ({"temperature": 5}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"presence_penalty": 9}, "presence_penalty"),
    ({"stream": [1]}, "stream"),
    ({"stop": ["x"] * 20}, "stop"),
    ({"stop": [""]}, "stop"),
    ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ({"logit_bias": {"5": 500}}, "logit_bias"),
    ({"logit_bias": {"999999": 1}}, "logit_bias"),  # beyond the vocabulary
    ({"logit_bias": {"²": 1}}, "logit_bias"),  # a digit to str.isdigit, not to int()
    ({"logit_bias": {"9" * 5000: 1}}, "logit_bias"),
    ({"logit_bias": {str(i): 1 for i in range(2000)}}, "logit_bias"),  # too many entries
    ({"stop": ["x" * 10_000]}, "stop"),
    ({"top_k": 2**31 + 5}, "top_k"),  # would wrap negative in llama.cpp's int
    ({"n": 2}, "n"),
    ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs: true
    ({"seed": "abc"}, "seed"),
    ({"context_overflow_policy": "bogus"}, "context_overflow_policy"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}] * 5000}, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
]


def test_an_invalid_chat_field_is_a_400_naming_it(hearth_server):
    for change, param in CHAT_FIELD_ERRORS:  # one server for all: each case is one request
        body = {"model": hearth_server.model, "messages": HELLO, "max_tokens": 1, **change}
        error = _assert_error(_post(hearth_server, "/v1/chat/completions", body), 400, param)
        assert param.split("[")[0] in error["message"], error


def test_a_missing_field_is_named(hearth_server):
    error = _assert_error(_post(hearth_server, "/v1/chat/completions", {"messages": HELLO}),
                          400, "model")
    assert "Missing required parameter" in error["message"]
    _assert_error(_post(hearth_server, "/v1/chat/completions", {"model": "x"}), 400, "messages")


LATER_FEATURES = [
    ({"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
     "messages[0].content"),
]


def test_features_of_a_later_hearth_are_refused_not_ignored(hearth_server):
    for change, param in LATER_FEATURES:
        body = {"model": hearth_server.model, "messages": HELLO, "max_tokens": 1, **change}
        error = _assert_error(_post(hearth_server, "/v1/chat/completions", body), 400, param)
        assert "later Hearth" in error["message"]


def test_legacy_function_calling_is_refused_by_name(hearth_server):
    for change in ({"functions": [{"name": "f"}]}, {"function_call": "auto"}):
        body = {"model": hearth_server.model, "messages": HELLO, "max_tokens": 1, **change}
        param = next(iter(change))
        error = _assert_error(_post(hearth_server, "/v1/chat/completions", body), 400, param)
        assert "send 'tools'" in error["message"]


def test_text_parts_and_json_text_format_are_fine(hearth_server):
    body = {"model": hearth_server.model, "max_tokens": 1, "response_format": {"type": "text"},
            "messages": [{"role": "developer", "content": "be brief"},
                         {"role": "user", "content": [{"type": "text", "text": "hello"}]}]}
    assert _post(hearth_server, "/v1/chat/completions", body).status_code == 200


COMPLETION_FIELD_ERRORS = [
    ({"prompt": ["one", "two"]}, "prompt"),
    ({"prompt": [999999]}, "prompt"),
    ({"echo": True}, "echo"),
    ({"suffix": "end"}, "suffix"),
    ({"logprobs": 50}, "logprobs"),
    ({"best_of": 3}, "best_of"),
]


def test_an_invalid_completion_field_is_a_400_naming_it(hearth_server):
    for change, param in COMPLETION_FIELD_ERRORS:
        body = {"model": hearth_server.model, "prompt": "hello", "max_tokens": 1, **change}
        _assert_error(_post(hearth_server, "/v1/completions", body), 400, param)


def test_bodies_that_are_not_a_request(hearth_server):
    url = f"{hearth_server.base_url}/v1/chat/completions"
    for content in (b"{not json", b"[1, 2]", b"", "\u00e9t\u00e9".encode("latin-1")):
        response = httpx.post(url, content=content, timeout=60,
                              headers={"content-type": "application/json"})
        _assert_error(response, 400)


def test_an_unknown_model_is_a_404(hearth_server):
    for path, body in (("/v1/chat/completions", {"messages": HELLO}),
                       ("/v1/completions", {"prompt": "hi"}),
                       ("/v1/embeddings", {"input": "hi"}),
                       ("/api/v0/models/load", {})):
        error = _assert_error(_post(hearth_server, path, {"model": "no-such-model", **body}),
                              404, "model")
        assert error["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        hearth_server.client.chat.completions.create(model="nope", messages=HELLO)
    _assert_error(httpx.get(f"{hearth_server.base_url}/v1/models/nope"), 404)


def test_an_unknown_path_is_a_404_and_a_wrong_method_a_405(hearth_server):
    error = _assert_error(httpx.get(f"{hearth_server.base_url}/v1/nothing-here"), 404)
    assert error["code"] == "unknown_url"
    _assert_error(httpx.post(f"{hearth_server.base_url}/v2/chat", json={}), 404)
    _assert_error(httpx.delete(f"{hearth_server.base_url}/v1/chat/completions"), 405)


def test_a_language_model_refuses_embeddings(hearth_server):
    body = {"model": hearth_server.model, "input": "hello"}
    error = _assert_error(_post(hearth_server, "/v1/embeddings", body), 400, "model")
    assert "/v1/chat/completions" in error["message"]


def test_a_body_over_the_limit_is_a_413(make_hearth_server):
    server = make_hearth_server(ServerConfig(max_body_bytes=2000))
    big = {"model": server.model, "messages": [{"role": "user", "content": "a" * 3000}]}
    _assert_error(_post(server, "/v1/chat/completions", big), 413)

    def chunked():  # no Content-Length: the limit still holds while reading
        for _ in range(10):
            yield b" " * 500

    response = httpx.post(f"{server.base_url}/v1/chat/completions", content=chunked(),
                          headers={"content-type": "application/json"}, timeout=60)
    _assert_error(response, 413)
    small = {"model": server.model, "messages": HELLO, "max_tokens": 1}
    assert _post(server, "/v1/chat/completions", small).status_code == 200


LONG = " ".join(["the local model can answer the question"] * 80)  # well over 512 tokens


def test_a_prompt_over_the_context_is_a_400_before_any_stream_event(hearth_server):
    body = {"model": hearth_server.model, "stream": True, "max_tokens": 2,
            "messages": [{"role": "user", "content": LONG}]}
    with httpx.stream("POST", f"{hearth_server.base_url}/v1/chat/completions", json=body,
                      timeout=60) as response:
        response.read()
    error = _assert_error(response, 400, "messages")
    assert error["code"] == "context_length_exceeded"
    assert "512" in error["message"] and "tokens" in error["message"]
    with pytest.raises(openai.BadRequestError):
        hearth_server.client.completions.create(model=hearth_server.model, prompt=LONG,
                                                stream=True)


def test_a_rolling_window_drops_the_oldest_turns_instead(hearth_server):
    turns = []
    for _ in range(6):
        turns += [{"role": "user", "content": LONG[:600]}, {"role": "assistant", "content": "ok"}]
    turns += [{"role": "user", "content": "hello"}]
    body = {"model": hearth_server.model, "max_tokens": 2, "messages": turns}
    _assert_error(_post(hearth_server, "/v1/chat/completions", body), 400, "messages")
    body["context_overflow_policy"] = "rollingWindow"
    response = _post(hearth_server, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    assert 100 < response.json()["usage"]["prompt_tokens"] < 512
