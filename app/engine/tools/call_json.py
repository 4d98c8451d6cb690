"""Reading tool calls out of JSON a model wrote: the pieces every family parser shares.

A family parser looks at the text after its opening marker and answers with one of:
``None`` (it needs more text), `Calls` (calls found; ``consumed`` characters used) or
`Visible` (not a call after all: ``text`` is shown as reply text, with the family's markup left
out). Model output is untrusted: JSON that does not parse, or parses to something that is not a
call, is never dropped and never half-used: it comes back as visible text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.engine.tools.spec import MAX_NAME_CHARS

_WS = " \t\r\n"


@dataclass(frozen=True)
class RawCall:
    name: str
    arguments: str  # a JSON object's text
    id: str = ""  # the model's own id, if it wrote one


@dataclass(frozen=True)
class Calls:
    calls: tuple[RawCall, ...]
    consumed: int


@dataclass(frozen=True)
class Visible:
    consumed: int
    text: str


Outcome = Calls | Visible | None


class JsonEnd:
    """Finds where the JSON object or array at the start of a growing text ends.

    Fed the same text again and again as it grows, it only looks at the new characters, so a
    long argument streamed in small pieces costs linear time.
    """

    def __init__(self) -> None:
        self._pos = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self.start = -1
        self.end: int | None = None

    def find(self, text: str) -> int | None:
        """The index just past the value; None while it is incomplete; -1 when the text does
        not start (after whitespace) with ``{`` or ``[``."""
        if self.end is not None:
            return self.end
        i, n = self._pos, len(text)
        if self.start < 0:
            while i < n and text[i] in _WS:
                i += 1
            if i == n:
                self._pos = i
                return None
            if text[i] not in "{[":
                return -1
            self.start = i
        while i < n:
            c = text[i]
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif c == "\\":
                    self._escaped = True
                elif c == '"':
                    self._in_string = False
            elif c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self.end = i + 1
                    return self.end
            i += 1
        self._pos = i
        return None


def arguments_text(value: object) -> str | None:
    """A call's arguments as a JSON object's text: from an object, or from a string holding
    one (some models double-encode); None for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        return None
    return json.dumps(value, ensure_ascii=False)


def call_from_object(value: object, arg_keys: Sequence[str] = ("arguments", "parameters")
                     ) -> RawCall | None:
    """``{"name": ..., "arguments": {...}}`` (or the OpenAI ``{"function": {...}}`` shape, or
    ``parameters`` for arguments) as a call; None when it is not one."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        inner = dict(value["function"])
        inner.setdefault("id", value.get("id"))
        value = inner
    name = value.get("name")
    if not isinstance(name, str) or not good_name(name):
        return None
    present = [k for k in arg_keys if k in value]
    if not present:
        return None
    arguments = arguments_text(value[present[0]])
    if arguments is None:
        return None
    call_id = value.get("id")
    return RawCall(name, arguments, call_id if isinstance(call_id, str) else "")


def good_name(name: str) -> bool:
    """A plausible function name: short, one line, no markup. Whether the tool exists is the
    caller's business (it knows the tools it offered)."""
    return (0 < len(name) <= MAX_NAME_CHARS and name.isprintable()
            and not any(c in name for c in " <>[]{}\"'|"))


def calls_from_value(value: object, arg_keys: Sequence[str] = ("arguments", "parameters")
                     ) -> tuple[RawCall, ...] | None:
    """A call object, a list of them, or ``{"tool_calls": [...]}`` as calls; None when any
    part is not a call."""
    if isinstance(value, dict) and set(value) == {"tool_calls"}:
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    calls = [call_from_object(item, arg_keys) for item in items]
    if any(c is None for c in calls):
        return None
    return tuple(c for c in calls if c is not None)


def parse_json_value(text: str, state: dict[str, Any], final: bool,
                     accept: Callable[[object], tuple[RawCall, ...] | None],
                     hide: str = "") -> Outcome:
    """The JSON object or array at the start of ``text`` (which keeps growing between calls;
    ``state`` carries the scan), read by ``accept``.

    ``hide``: a closing marker the family may write after the value; it is consumed with it
    and never shown.
    """
    scanner: JsonEnd = state.setdefault("json_end", JsonEnd())
    end = scanner.find(text)
    if end == -1:
        return Visible(0, "")
    if end is None:
        return Visible(len(text), text.replace(hide, "") if hide else text) if final else None
    rest = text[end:]
    consumed = end
    if hide:
        stripped = rest.lstrip(_WS)
        if stripped.startswith(hide):
            consumed = len(text) - len(stripped) + len(hide)
        elif not final and hide.startswith(stripped) and stripped:
            return None  # the closing marker may be arriving
    try:
        value = json.loads(text[scanner.start:end])
    except (ValueError, RecursionError):
        value = None
    calls = accept(value) if value is not None else None
    if calls is None:
        return Visible(consumed, text[:end])
    return Calls(calls, consumed)


def key_prefix_ok(text: str, keys: Sequence[str]) -> bool:
    """False once ``text`` (a JSON object being written) has a first key that is not one of
    ``keys``: then it is an answer in JSON, not a call, and can be shown as it streams."""
    s = text.lstrip(_WS)
    if not s.startswith("{"):
        return True
    s = s[1:].lstrip(_WS)
    if not s:
        return True
    if s[0] != '"':
        return False
    body = s[1:]
    close = body.find('"')
    if close == -1:
        return any(k.startswith(body) for k in keys)
    return body[:close] in keys
