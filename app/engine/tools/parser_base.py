"""What a family parser offers the streaming parser (`app.engine.tools.stream`)."""

from __future__ import annotations

from typing import Any

from app.engine.tools.call_json import Outcome, Visible, calls_from_value, key_prefix_ok
from app.engine.tools.call_json import parse_json_value as _parse_json_value


class FamilyParser:
    """One family's markup. Subclasses set the markers and override `parse_region`.

    ``starts``: markers that open a call anywhere in the answer. ``drops``: stray markup (a
    closing tag) removed from visible text. ``leading_json``: a JSON object or array that
    opens the answer may be a call (Llama 3.x, the generic fallback). ``marker_tokens``: the
    markers that are special tokens in the family's vocabularies; the detokenizer must write
    them out for the parser to see them.
    """

    name = "base"
    starts: tuple[str, ...] = ()
    drops: tuple[str, ...] = ()
    leading_json = False
    leading_keys: tuple[str, ...] = ("name",)
    arg_keys: tuple[str, ...] = ("arguments", "parameters")
    marker_tokens: tuple[str, ...] = ()

    @property
    def control_text(self) -> frozenset[str]:
        """The control tokens a reply read by this parser must carry as text."""
        return frozenset(self.marker_tokens)

    def parse_region(self, marker: str, text: str, final: bool, state: dict[str, Any]
                     ) -> Outcome:
        """``text``: everything after ``marker`` so far (it grows between calls, ``state``
        persists with it); ``final``: no more text will come."""
        return Visible(len(text), text)

    def parse_leading(self, text: str, final: bool, state: dict[str, Any]) -> Outcome:
        """``text`` starts with "{" or "[" at the start of the answer."""
        if not key_prefix_ok(text, self.leading_keys):
            return Visible(0, "")
        return _parse_json_value(text, state, final,
                                 lambda v: calls_from_value(v, self.arg_keys))
