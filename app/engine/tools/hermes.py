"""Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, one call per tag
(Hermes 2 Pro and 3, Qwen 2.5, Qwen 3, QwQ). Qwen3-Coder's XML form inside the same tags,
``<function=name><parameter=key>value</parameter></function>``, is read too."""

from __future__ import annotations

import json
import re
from typing import Any

from app.engine.tools.call_json import (
    Calls,
    Outcome,
    RawCall,
    Visible,
    call_from_object,
    calls_from_value,
    good_name,
    parse_json_value,
)
from app.engine.tools.parser_base import FamilyParser

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_XML_CALL = re.compile(r"\s*<function=([^>\n]+)>(.*?)</function>\s*", re.S)
_XML_PARAM = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.S)


class HermesParser(FamilyParser):
    name = "hermes"
    starts = (OPEN,)
    drops = (CLOSE,)

    def parse_region(self, marker: str, text: str, final: bool, state: dict[str, Any]
                     ) -> Outcome:
        end = text.find(CLOSE, state.get("searched", 0))
        # Next time, look only at what is new (a long call arrives in many pieces).
        state["searched"] = max(0, len(text) - len(CLOSE) + 1)
        if end == -1:
            if not final:
                return None
            # The model stopped before closing the tag: a complete object still counts.
            return parse_json_value(text, state, final, lambda v: calls_from_value(v))
        inner = text[:end]
        consumed = end + len(CLOSE)
        calls = _json_calls(inner) or _xml_call(inner)
        if calls is None:
            return Visible(consumed, inner)
        return Calls(calls, consumed)


def _json_calls(inner: str) -> tuple[RawCall, ...] | None:
    decoder = json.JSONDecoder()
    calls: list[RawCall] = []
    pos = 0
    while True:
        while pos < len(inner) and inner[pos] in " \t\r\n":
            pos += 1
        if pos == len(inner):
            break
        try:
            value, pos = decoder.raw_decode(inner, pos)
        except (ValueError, RecursionError):
            return None
        call = call_from_object(value)
        if call is None:
            return None
        calls.append(call)
    return tuple(calls) or None


def _xml_call(inner: str) -> tuple[RawCall, ...] | None:
    match = _XML_CALL.fullmatch(inner)
    if match is None:
        return None
    name = match.group(1).strip()
    if not good_name(name):
        return None
    arguments: dict[str, object] = {}
    for key, raw in _XML_PARAM.findall(match.group(2)):
        try:
            arguments[key.strip()] = json.loads(raw)
        except ValueError:
            arguments[key.strip()] = raw  # a bare string, as the template writes strings
    return (RawCall(name, json.dumps(arguments, ensure_ascii=False)),)
