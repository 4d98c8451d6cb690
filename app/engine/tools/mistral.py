"""Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "abc123XYZ"}, ...]``
(Mistral 7B v0.3, Nemo, Small 3.0/3.1), and the newer form, one marker per call:
``[TOOL_CALLS]name[ARGS]{...}``, with ``[CALL_ID]id`` before ``[ARGS]`` in some versions
(Small 3.2, Devstral, Magistral)."""

from __future__ import annotations

from typing import Any

from app.engine.tools.call_json import (
    Calls,
    Outcome,
    RawCall,
    Visible,
    arguments_text,
    calls_from_value,
    good_name,
    parse_json_value,
)
from app.engine.tools.parser_base import FamilyParser

TOOL_CALLS, ARGS, CALL_ID = "[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"
_NAME_LIMIT = 200  # characters to wait for "[ARGS]" before deciding this is no call


class MistralParser(FamilyParser):
    name = "mistral"
    starts = (TOOL_CALLS,)
    marker_tokens = (TOOL_CALLS, ARGS, CALL_ID)

    def parse_region(self, marker: str, text: str, final: bool, state: dict[str, Any]
                     ) -> Outcome:
        head = text.lstrip(" \t\r\n")
        if not head:
            return Visible(len(text), "") if final else None
        if head[0] == "[":
            return parse_json_value(text, state, final, calls_from_value)
        return _named_call(text, final, state)


def _named_call(text: str, final: bool, state: dict[str, Any]) -> Outcome:
    args_at = state.get("args_at")
    if args_at is None:
        found = text.find(ARGS)
        if found == -1:
            if final or len(text) > _NAME_LIMIT or "\n" in text:
                return Visible(len(text), _unmarked(text))
            return None
        head = text[:found].strip()
        name, _, call_id = head.partition(CALL_ID)
        if not good_name(name.strip()):
            return Visible(len(text), _unmarked(text))
        state.update(args_at=found + len(ARGS), name=name.strip(), call_id=call_id.strip())
        args_at = state["args_at"]
    body = text[args_at:]
    name, call_id = state["name"], state["call_id"]

    def accept(value: object) -> tuple[RawCall, ...] | None:
        arguments = arguments_text(value)
        return None if arguments is None else (RawCall(name, arguments, call_id),)

    outcome = parse_json_value(body, state, final, accept)
    if isinstance(outcome, Calls):
        return Calls(outcome.calls, args_at + outcome.consumed)
    if isinstance(outcome, Visible):
        shown = text if outcome.consumed == 0 else text[:args_at + outcome.consumed]
        return Visible(len(shown), _unmarked(shown))
    return None


def _unmarked(text: str) -> str:
    """A failed call's text, shown without Mistral's markup."""
    for marker in (ARGS, CALL_ID, TOOL_CALLS):
        text = text.replace(marker, " ")
    return text
