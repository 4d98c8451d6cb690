"""Split a streaming reply into visible text and tool calls, whatever size the pieces come in.

`ToolCallStream(family).feed(text)` returns events as soon as they are certain:

- Text that may be the start of a marker ("<tool_", "[TOOL_CA") is held back until the next
  piece says what it is, so markup never reaches the visible text, even split across pieces.
- A call is reported once it is complete (`ToolCallBegin`, then its arguments as one
  `ToolCallArgs`): until its JSON closes nobody can tell a call from broken JSON, and a
  call that was announced cannot be taken back.
- Reasoning (``<think>…</think>``, or from the start when the prompt opened the block) passes
  through as text, tags included (the app splits it off with `split_thinking`): a call
  written while thinking is a thought, not a call.
- Markup whose content is not a call (malformed JSON, no name, text instead of arguments) is
  shown as text without its markers, never dropped: the user sees what the model wrote.
- A call longer than ``max_call_chars`` is shown as text rather than held forever.
"""

from __future__ import annotations

from typing import Any

from app.engine.inference.reasoning import CLOSE_TAG, OPEN_TAG
from app.engine.tools.call_json import Calls, RawCall
from app.engine.tools.events import ContentDelta, ToolCallArgs, ToolCallBegin, ToolEvent
from app.engine.tools.families import parser_for
from app.engine.tools.parser_base import FamilyParser
from app.engine.tools.spec import new_call_id
from app.engine.types import ToolCall

MAX_CALL_CHARS = 1024 * 1024
_WS = " \t\r\n"
_MAX_ID_CHARS = 128


class ToolCallStream:
    def __init__(self, family: str | FamilyParser, *, starts_in_thinking: bool = False,
                 max_call_chars: int = MAX_CALL_CHARS) -> None:
        self._parser = parser_for(family) if isinstance(family, str) else family
        self._max = max_call_chars
        self._markers = (OPEN_TAG, *self._parser.starts, *self._parser.drops)
        self._buf = ""
        self._mode = "think" if starts_in_thinking else "text"  # | "region" | "leading"
        self._marker = ""
        self._state: dict[str, Any] = {}
        self._at_start = True  # only whitespace so far in this answer: a call may lead it
        self._leading_ok = self._parser.leading_json
        self._events: list[ToolEvent] = []
        self._content: list[str] = []
        self.calls: list[ToolCall] = []  # every call so far, complete
        self._finished = False
        self._pending_ws = ""

    @property
    def family(self) -> str:
        return self._parser.name

    @property
    def control_text(self) -> frozenset[str]:
        """The control tokens the reply must carry as text for this parser to see them."""
        return self._parser.control_text

    @property
    def content(self) -> str:
        """All visible text reported so far."""
        return "".join(self._content)

    def feed(self, text: str) -> list[ToolEvent]:
        if self._finished:
            raise RuntimeError("feed after finish")
        self._buf += text
        self._run(final=False)
        return self._take()

    def finish(self) -> list[ToolEvent]:
        """The end of the reply: whatever was held back is decided now."""
        if not self._finished:
            self._finished = True
            self._run(final=True)
            if not self.calls and self._pending_ws:
                self._push(self._pending_ws)  # a plain reply keeps its text as written
            self._pending_ws = ""
        return self._take()

    # -- internals -----------------------------------------------------------------------------
    def _take(self) -> list[ToolEvent]:
        events, self._events = self._events, []
        return events

    def _emit(self, text: str) -> None:
        # Trailing whitespace waits for more text: whitespace between or after calls ("\n"
        # between two <tool_call> tags) would be a content delta of nothing visible.
        text = self._pending_ws + text
        shown = text.rstrip(_WS)
        self._pending_ws = text[len(shown):]
        if shown:
            self._push(shown)
            self._at_start = False

    def _push(self, text: str) -> None:
        self._content.append(text)
        if self._events and isinstance(self._events[-1], ContentDelta):
            self._events[-1] = ContentDelta(self._events[-1].text + text)
        else:
            self._events.append(ContentDelta(text))

    def _run(self, final: bool) -> None:
        while True:
            if self._mode == "think":
                if not self._think(final):
                    return
            elif self._mode == "text":
                if not self._text(final):
                    return
            elif not self._call(final):
                return

    def _think(self, final: bool) -> bool:
        end = self._buf.find(CLOSE_TAG)
        if end == -1:
            keep = 0 if final else _partial_suffix(self._buf, (CLOSE_TAG,))
            self._emit(self._buf[:len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep:]
            return False
        self._emit(self._buf[:end + len(CLOSE_TAG)])
        self._buf = self._buf[end + len(CLOSE_TAG):]
        self._mode, self._at_start, self._leading_ok = "text", True, self._parser.leading_json
        return True

    def _text(self, final: bool) -> bool:
        if self._at_start and self._leading_ok:
            # After a leading call, ";" may separate it from the next (Llama 3.x).
            skip = _WS + ";" if self.calls else _WS
            head = self._buf.lstrip(skip)
            if not head:
                if self.calls:
                    self._buf = ""  # separators after a call
                elif final:
                    self._emit(self._buf)
                    self._buf = ""
                return False
            if head[0] in "{[":
                self._buf, self._mode, self._state = head, "leading", {}
                return True
        found = _first_marker(self._buf, self._markers)
        if found is None:
            keep = 0 if final else _partial_suffix(self._buf, self._markers)
            self._emit(self._buf[:len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep:]
            return False
        at, marker = found
        self._emit(self._buf[:at])
        self._buf = self._buf[at + len(marker):]
        if marker == OPEN_TAG:
            self._emit(marker)
            self._mode = "think"
        elif marker in self._parser.starts:
            self._mode, self._marker, self._state = "region", marker, {}
        return True  # a dropped marker: just gone

    def _call(self, final: bool) -> bool:
        leading = self._mode == "leading"
        if leading:
            outcome = self._parser.parse_leading(self._buf, final, self._state)
        else:
            outcome = self._parser.parse_region(self._marker, self._buf, final, self._state)
        if outcome is None:
            if len(self._buf) <= self._max:
                return False
            outcome_text, consumed = self._buf, len(self._buf)
        elif isinstance(outcome, Calls):
            for raw in outcome.calls:
                self._report(raw)
            self._buf = self._buf[outcome.consumed:]
            self._mode = "text"
            self._at_start = leading
            return True
        else:
            outcome_text, consumed = outcome.text, outcome.consumed
        self._buf = self._buf[consumed:]
        self._mode = "text"
        if leading:
            self._leading_ok = False  # this answer's JSON is not a call: show it as text
        self._emit(outcome_text)
        return True

    def _report(self, raw: RawCall) -> None:
        call_id = raw.id if raw.id and len(raw.id) <= _MAX_ID_CHARS and raw.id.isprintable() \
            else new_call_id()
        self._pending_ws = ""
        index = len(self.calls)
        self.calls.append(ToolCall(call_id, raw.name, raw.arguments))
        self._events.append(ToolCallBegin(index, call_id, raw.name))
        self._events.append(ToolCallArgs(index, raw.arguments))


def _first_marker(text: str, markers: tuple[str, ...]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for marker in markers:
        at = text.find(marker)
        if at != -1 and (best is None or at < best[0]):
            best = (at, marker)
    return best


def _partial_suffix(text: str, markers: tuple[str, ...]) -> int:
    """The length of the longest end of ``text`` that begins some marker."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:size]):
                longest = size
                break
    return longest


def parse_reply(family: str, text: str, *, starts_in_thinking: bool = False
                ) -> tuple[str, list[ToolCall]]:
    """A whole (not streamed) reply: its visible text and its calls."""
    stream = ToolCallStream(family, starts_in_thinking=starts_in_thinking)
    stream.feed(text)
    stream.finish()
    return stream.content, list(stream.calls)
