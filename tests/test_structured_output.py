"""`response_format` through the API: replies that parse and validate, or a 400 saying why."""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest

HELLO = [{"role": "user", "content": "Describe a person as JSON."}]
PERSON = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 10},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "role": {"enum": ["admin", "user"]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 3}},
    "required": ["name", "age", "role", "tags"], "additionalProperties": False}
FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON,
                                                  "strict": True}}


def _post(server, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.base_url}{path}", json=body, timeout=60)


def test_a_chat_reply_validates_against_the_schema(hearth_server):
    for seed in range(2):
        reply = hearth_server.client.chat.completions.create(
            model=hearth_server.model, messages=HELLO, seed=seed, max_tokens=300,
            response_format=FORMAT)
        assert reply.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(reply.choices[0].message.content), PERSON)


def test_a_streamed_chat_reply_validates_against_the_schema(hearth_server):
    chunks = list(hearth_server.client.chat.completions.create(
        model=hearth_server.model, messages=HELLO, seed=4, max_tokens=300,
        response_format=FORMAT, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(text), PERSON)


def test_json_object_mode_gives_a_json_object(hearth_server):
    for seed in (1, 3):
        reply = hearth_server.client.chat.completions.create(
            model=hearth_server.model, messages=HELLO, seed=seed, max_tokens=150,
            response_format={"type": "json_object"})
        text, finish = reply.choices[0].message.content, reply.choices[0].finish_reason
        if finish == "stop":
            assert isinstance(json.loads(text), dict)
        else:
            assert finish == "length" and text.lstrip().startswith("{")


def test_completions_take_response_format_too_streamed_or_not(hearth_server):
    reply = hearth_server.client.completions.create(
        model=hearth_server.model, prompt="A person:", seed=1, max_tokens=300,
        extra_body={"response_format": FORMAT})
    jsonschema.validate(json.loads(reply.choices[0].text), PERSON)
    chunks = list(hearth_server.client.completions.create(
        model=hearth_server.model, prompt="A person:", seed=2, max_tokens=300, stream=True,
        extra_body={"response_format": FORMAT}))
    jsonschema.validate(json.loads("".join(c.choices[0].text for c in chunks)), PERSON)


def test_max_tokens_too_small_for_the_json_ends_with_length(hearth_server):
    reply = hearth_server.client.chat.completions.create(
        model=hearth_server.model, messages=HELLO, seed=1, max_tokens=3,
        response_format=FORMAT)
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content.lstrip().startswith("{")


def test_unsupported_schema_features_are_a_400_that_lists_them(hearth_server):
    schema = {"type": "object", "properties": {
        "n": {"type": "integer", "multipleOf": 3},
        "ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}},
        "not": {"required": ["x"]}}
    for path, body in [
        ("/v1/chat/completions", {"messages": HELLO}),
        ("/v1/completions", {"prompt": "x"}),
    ]:
        response = _post(hearth_server, path, {
            "model": hearth_server.model, "max_tokens": 5, **body,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "x", "schema": schema}}})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == "response_format.json_schema.schema"
        for feature in ("properties.n.multipleOf", "properties.ids.uniqueItems", "not"):
            assert feature in error["message"]


def test_the_openai_client_raises_bad_request_for_a_malformed_schema(hearth_server):
    with pytest.raises(openai.BadRequestError) as caught:
        hearth_server.client.chat.completions.create(
            model=hearth_server.model, messages=HELLO, max_tokens=5,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "x", "schema": {"type": "nonsense"}}})
    assert "response_format.json_schema.schema" in str(caught.value)


def _nested(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema, "b": schema}}
    return schema


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"},
                                            "minItems": 10**8}}},
    {"type": "object", "properties": {f"k{i}": {"type": "integer"} for i in range(20000)}},
    {"allOf": [{"anyOf": [{"$ref": "#"}]}] * 50},
])
def test_a_hostile_schema_is_a_quick_400(hearth_server, schema):
    started = time.perf_counter()
    response = _post(hearth_server, "/v1/chat/completions", {
        "model": hearth_server.model, "messages": HELLO, "max_tokens": 5,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x",
                                                                    "schema": schema}}})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "response_format.json_schema.schema"
    assert time.perf_counter() - started < 2.0


def test_a_deeply_nested_schema_is_a_quick_400(hearth_server):
    body = json.dumps({"model": hearth_server.model, "messages": HELLO, "max_tokens": 5,
                       "response_format": {"type": "json_schema", "json_schema": {
                           "name": "x", "schema": {"type": "object"}}}})
    deep = '{"type":"object","properties":{"a":' * 300 + '{"type":"string"}' + "}}" * 300
    body = body.replace('{"type": "object"}', deep)
    started = time.perf_counter()
    response = httpx.post(f"{hearth_server.base_url}/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 400, response.text
    assert time.perf_counter() - started < 2.0


def test_an_unknown_response_format_type_is_a_400(hearth_server):
    response = _post(hearth_server, "/v1/chat/completions", {
        "model": hearth_server.model, "messages": HELLO, "max_tokens": 5,
        "response_format": {"type": "yaml"}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format.type"
