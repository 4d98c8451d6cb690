"""Llama 3.x: a JSON call object as the whole answer (``{"name": ..., "parameters": {...}}``,
Llama 3.2 adds ``"type": "function"``), several separated by ";", or after ``<|python_tag|>``;
3.1's built-in tools write ``<|python_tag|>brave_search.call(query="...")`` there."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from app.engine.tools.call_json import (
    Calls,
    Outcome,
    RawCall,
    Visible,
    calls_from_value,
    good_name,
)
from app.engine.tools.parser_base import FamilyParser

PYTHON_TAG = "<|python_tag|>"
_BUILTIN = re.compile(r"\s*([A-Za-z_][\w]*)\.call\((.*)\)\s*", re.S)


class Llama3Parser(FamilyParser):
    name = "llama3"
    starts = (PYTHON_TAG,)
    leading_json = True
    leading_keys = ("name", "type", "function")
    arg_keys = ("parameters", "arguments")
    marker_tokens = (PYTHON_TAG,)

    def parse_region(self, marker: str, text: str, final: bool, state: dict[str, Any]
                     ) -> Outcome:
        # Everything after the tag up to the end of the turn is the call.
        if not final:
            return None
        calls = _json_sequence(text, self.arg_keys) or _builtin_call(text)
        if calls is None:
            return Visible(len(text), text)
        return Calls(calls, len(text))


def _json_sequence(text: str, arg_keys: tuple[str, ...]) -> tuple[RawCall, ...] | None:
    decoder = json.JSONDecoder()
    calls: list[RawCall] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n;":
            pos += 1
        if pos == len(text):
            break
        try:
            value, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            return None
        found = calls_from_value(value, arg_keys)
        if found is None:
            return None
        calls.extend(found)
    return tuple(calls) or None


def _builtin_call(text: str) -> tuple[RawCall, ...] | None:
    """``name.call(key="value", ...)`` read with `ast` (never evaluated): literals only."""
    match = _BUILTIN.fullmatch(text)
    if match is None or not good_name(match.group(1)):
        return None
    try:
        node = ast.parse(f"f({match.group(2)})", mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None
    if not isinstance(node, ast.Call) or node.args:
        return None
    arguments: dict[str, object] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        try:
            arguments[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None
    try:
        return (RawCall(match.group(1), json.dumps(arguments, ensure_ascii=False)),)
    except (TypeError, ValueError):
        return None  # a literal JSON cannot hold (a set, bytes)
