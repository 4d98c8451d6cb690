"""``<|tool_call|>`` followed by a JSON list of calls: IBM Granite 3.x (to the end of the turn)
and Phi-4-mini (closed by ``<|/tool_call|>``)."""

from __future__ import annotations

from typing import Any

from app.engine.tools.call_json import Outcome, calls_from_value, parse_json_value
from app.engine.tools.parser_base import FamilyParser

OPEN, CLOSE = "<|tool_call|>", "<|/tool_call|>"


class GraniteParser(FamilyParser):
    name = "granite"
    starts = (OPEN,)
    drops = (CLOSE,)
    marker_tokens = (OPEN, CLOSE)

    def parse_region(self, marker: str, text: str, final: bool, state: dict[str, Any]
                     ) -> Outcome:
        return parse_json_value(text, state, final, calls_from_value, hide=CLOSE)
