"""Tool requests checked and bounded (they come from API clients and MCP servers), and the JSON
schema that constrains a required or named call (issue 12)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from app.engine.structured.schema_grammar import schema_to_grammar
from app.engine.tools import (
    ToolChoice,
    call_schema,
    parse_parallel_tool_calls,
    parse_reply,
    parse_tool_call,
    parse_tool_choice,
    parse_tools,
)
from app.engine.tools.spec import MAX_TOOLS
from app.engine.types import ChatMessage

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
        "required": ["city"], "additionalProperties": False}}}
NOW = {"type": "function", "function": {"name": "now"}}


def test_tools_are_read_into_specs() -> None:
    specs = parse_tools([WEATHER, NOW])
    assert [s.name for s in specs] == ["get_weather", "now"]
    assert specs[0].parameters == WEATHER["function"]["parameters"]
    assert specs[1].to_openai()["function"]["parameters"] == {"type": "object",
                                                              "properties": {}}
    assert parse_tools(None) == ()


@pytest.mark.parametrize(("tools", "field"), [
    ({"name": "x"}, "tools"),
    ([{"type": "code_interpreter"}], "tools[0]"),
    ([{"type": "function"}], "tools[0].function"),
    ([{"type": "function", "function": {"name": "rm -rf /"}}], "tools[0].function.name"),
    ([{"type": "function", "function": {"name": "<|im_start|>"}}], "tools[0].function.name"),
    ([NOW, NOW], "tools[1].function.name"),
    ([{"type": "function", "function": {"name": "f", "parameters": "{}"}}],
     "tools[0].function.parameters"),
    ([{"type": "function", "function": {"name": "f", "description": 3}}],
     "tools[0].function.description"),
    ([{"type": "function", "function": {"name": "f", "description": "x" * 10_000}}],
     "tools[0].function.description"),
    ([NOW] * (MAX_TOOLS + 1), "tools"),
])
def test_bad_tools_are_refused_naming_the_field(tools: object, field: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(field) + ":"):
        parse_tools(tools)


def test_deeply_nested_parameters_are_refused() -> None:
    deep: dict = {"type": "object"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(ValueError, match="nested deeper"):
        parse_tools([{"type": "function", "function": {"name": "f", "parameters": deep}}])


def test_tool_choice_values() -> None:
    tools = parse_tools([WEATHER, NOW])
    assert parse_tool_choice(None, tools) == ToolChoice("auto")
    assert parse_tool_choice(None, ()) == ToolChoice("none")
    assert parse_tool_choice("required", tools) == ToolChoice("required")
    assert parse_tool_choice({"type": "function", "function": {"name": "now"}}, tools) == \
        ToolChoice("required", "now")
    for bad in ("always", {"type": "function", "function": {"name": "missing"}}, 3):
        with pytest.raises(ValueError, match="^tool_choice"):
            parse_tool_choice(bad, tools)
    with pytest.raises(ValueError, match="needs at least one tool"):
        parse_tool_choice("required", ())


def test_parallel_tool_calls_is_a_boolean() -> None:
    assert parse_parallel_tool_calls(None) is True
    assert parse_parallel_tool_calls(False) is False
    with pytest.raises(ValueError, match="^parallel_tool_calls"):
        parse_parallel_tool_calls("yes")


def test_calls_sent_back_by_a_client_get_ids_and_json_arguments() -> None:
    call = parse_tool_call({"type": "function", "function": {"name": "now", "arguments": {}}},
                           "messages[2].tool_calls[0]")
    assert call.id.startswith("call_") and call.arguments == "{}"
    with pytest.raises(ValueError, match=r"^messages\[2\]\.tool_calls\[0\]\.function\.name"):
        parse_tool_call({"type": "function", "function": {"name": ""}},
                        "messages[2].tool_calls[0]")


def test_existing_callers_of_chat_message_still_work() -> None:
    m = ChatMessage("user", "hi")
    assert (m.tool_calls, m.tool_call_id, m.name) == ((), "", "")


def test_a_required_call_may_be_any_tool_with_its_own_arguments() -> None:
    tools = parse_tools([WEATHER, NOW])
    schema = call_schema(tools, ToolChoice("required"), parallel=False)
    good = [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}},
            {"name": "now", "arguments": {}}]
    bad = [{"name": "get_weather", "arguments": {"unit": "C"}},  # city is required
           {"name": "get_weather", "arguments": {"city": "Paris", "unit": "K"}},
           {"name": "delete_everything", "arguments": {}},
           {"name": "now"}]
    for value in good:
        jsonschema.validate(value, schema)
        _, calls = parse_reply("generic", json.dumps(value))
        assert [(c.name, json.loads(c.arguments)) for c in calls] == [
            (value["name"], value["arguments"])]
    for value in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, schema)


def test_a_named_choice_allows_only_that_tool() -> None:
    tools = parse_tools([WEATHER, NOW])
    schema = call_schema(tools, ToolChoice("required", "get_weather"), parallel=False)
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "Rome"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "now", "arguments": {}}, schema)


def test_parallel_calls_are_a_list_of_one_to_n() -> None:
    tools = parse_tools([WEATHER, NOW])
    schema = call_schema(tools, ToolChoice("required"), parallel=True, max_calls=3)
    two = {"tool_calls": [{"name": "now", "arguments": {}},
                          {"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    jsonschema.validate(two, schema)
    _, calls = parse_reply("generic", json.dumps(two))
    assert [c.name for c in calls] == ["now", "get_weather"]
    for bad in ({"tool_calls": []}, {"tool_calls": [two["tool_calls"][0]] * 4}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_call_schemas_become_grammars() -> None:
    tools = parse_tools([WEATHER, NOW])
    for choice in (ToolChoice("required"), ToolChoice("required", "now")):
        for parallel in (False, True):
            grammar = schema_to_grammar(call_schema(tools, choice, parallel))
            assert "root ::=" in grammar and '"\\"now\\""' in grammar


def test_none_cannot_be_constrained() -> None:
    with pytest.raises(ValueError, match="none"):
        call_schema(parse_tools([NOW]), ToolChoice("none"))
