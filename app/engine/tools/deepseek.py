"""DeepSeek V3 / R1 and the R1 distills (Qwen, Llama):
``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>name\\n```json\\n{...}\\n```
<｜tool▁call▁end｜>…<｜tool▁calls▁end｜>``; V3.1 writes ``name<｜tool▁sep｜>{...}`` in each call.

The distills' templates render calls but do not read ``tools``, so they are prompted with the
generic fallback: a leading generic JSON call is read too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.engine.tools.call_json import (
    Calls,
    Outcome,
    RawCall,
    Visible,
    arguments_text,
    good_name,
)
from app.engine.tools.generic import GenericParser

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
_FENCED = re.compile(r"\s*([^\s`]+)\s*```(?:json)?\s*(.*?)\s*```\s*", re.S)


class DeepSeekParser(GenericParser):
    name = "deepseek"
    starts = (CALLS_BEGIN, CALL_BEGIN)
    drops = (CALLS_END,)
    marker_tokens = (CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP)

    def parse_region(self, marker: str, text: str, final: bool, state: dict[str, Any]
                     ) -> Outcome:
        close = CALLS_END if marker == CALLS_BEGIN else CALL_END
        end = text.find(close, state.get("searched", 0))
        state["searched"] = max(0, len(text) - len(close) + 1)
        if end == -1 and not final:
            return None
        inner = text if end == -1 else text[:end]
        consumed = len(text) if end == -1 else end + len(close)
        bodies = inner.split(CALL_BEGIN) if marker == CALLS_BEGIN else ["", inner]
        if bodies[0].strip():
            return Visible(consumed, _unmarked(inner))
        calls = [_call(b.replace(CALL_END, "")) for b in bodies[1:] if b.strip()]
        if not calls or any(c is None for c in calls):
            return Visible(consumed, _unmarked(inner))
        return Calls(tuple(c for c in calls if c is not None), consumed)


def _call(body: str) -> RawCall | None:
    head, sep, rest = body.partition(SEP)
    if not sep:
        return None
    fenced = _FENCED.fullmatch(rest)
    if fenced is not None:  # V3 / R1: the type before the separator, name and JSON after it
        name, raw = fenced.group(1), fenced.group(2)
    else:  # V3.1: the name before the separator, JSON after it
        name, raw = head.strip(), rest.strip()
    try:
        arguments = arguments_text(json.loads(raw))
    except (ValueError, RecursionError):
        return None
    if arguments is None or not good_name(name):
        return None
    return RawCall(name, arguments)


def _unmarked(text: str) -> str:
    for marker in (CALL_BEGIN, CALL_END, SEP, CALLS_BEGIN, CALLS_END):
        text = text.replace(marker, "\n")
    return text
