"""Untrusted text (a model's reply) made safe to write to a terminal.

A terminal obeys escape sequences in what it prints: a reply could retitle the window, write
the clipboard (OSC 52), move the cursor to overwrite or hide text, or turn the text invisible.
`TerminalText` drops complete escape sequences (CSI, OSC, DCS, …), shows every other control
character as a visible symbol (C0 as its Unicode control picture, e.g. ␛; C1 and bidirectional
overrides as �), and keeps newlines and tabs. Carriage returns are dropped (they would let a
line be overwritten; CRLF line ends lose nothing).

It is fed streamed pieces, which may end inside a sequence: the unfinished part is held until
it completes. A sequence that runs past its bound (an unterminated OSC, say) is given up and
shown visibly, so nothing after it can be swallowed; `flush()` shows what is still held.
"""

from __future__ import annotations

import re

ESC = "\x1b"
MAX_CONTROL_SEQUENCE = 128  # ESC and CSI sequences longer than this are shown, not dropped
MAX_STRING_SEQUENCE = 4096  # OSC, DCS, SOS, PM and APC strings likewise
_STRING_INTRODUCERS = {"]": "\x9d", "P": "\x90", "X": "\x98", "^": "\x9e", "_": "\x9f"}
_C1_STRINGS = set(_STRING_INTRODUCERS.values())
_CSI_C1 = "\x9b"
_ST_C1 = "\x9c"
_BIDI_CONTROLS = {*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u061c"}
_REPLACEMENT = "\ufffd"
# Everything `visible` changes; text between these is passed on in one piece.
_SPECIAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u202a-\u202e\u2066-\u2069]")


def visible(char: str) -> str:
    """``char`` as something a terminal prints without acting on it."""
    code = ord(char)
    if char in "\n\t":
        return char
    if char == "\r":
        return ""
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC)
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= code <= 0x9F or char in _BIDI_CONTROLS:
        return _REPLACEMENT
    return char


class TerminalText:
    """Feed streamed text in, write what comes out; call `flush()` at the end."""

    def __init__(self) -> None:
        self._held = ""  # an unfinished escape sequence
        self._kind = ""  # "esc", "csi" or "string" while one is held
        self._string_esc = False  # an ESC seen inside a string: ST ("ESC \") may follow

    def feed(self, text: str) -> str:
        out: list[str] = []
        position, end = 0, len(text)
        while position < end:
            if not self._kind:
                special = _SPECIAL.search(text, position)
                stop = special.start() if special else end
                out.append(text[position:stop])
                position = stop
                if position == end:
                    break
            self._step(text[position], out)
            position += 1
        return "".join(out)

    def flush(self) -> str:
        """Show whatever unfinished sequence is held (the stream ended inside it)."""
        held, self._held, self._kind, self._string_esc = self._held, "", "", False
        return "".join(visible(c) for c in held)

    # -- the state machine ---------------------------------------------------------------------
    def _start(self, kind: str, char: str) -> None:
        self._held, self._kind, self._string_esc = char, kind, False

    def _drop(self) -> None:
        self._held, self._kind, self._string_esc = "", "", False

    def _give_up(self, out: list[str]) -> None:
        out.append(self.flush())

    def _step(self, char: str, out: list[str]) -> None:
        kind = self._kind
        if not kind:
            if char == ESC:
                self._start("esc", char)
            elif char == _CSI_C1:
                self._start("csi", char)
            elif char in _C1_STRINGS:
                self._start("string", char)
            else:
                out.append(visible(char))
            return
        code = ord(char)
        if kind == "esc":
            if len(self._held) == 1 and char == "[":
                self._start("csi", self._held + char)
            elif len(self._held) == 1 and char in _STRING_INTRODUCERS:
                self._start("string", self._held + char)
            elif 0x20 <= code <= 0x2F:  # intermediate bytes, e.g. ESC ( B
                self._held += char
            elif 0x30 <= code <= 0x7E:  # the final byte: a complete sequence, dropped
                self._drop()
            else:
                self._give_up(out)
                self._step(char, out)
                return
        elif kind == "csi":
            if 0x20 <= code <= 0x3F:  # parameters and intermediates
                self._held += char
            elif 0x40 <= code <= 0x7E:
                self._drop()
            else:
                self._give_up(out)
                self._step(char, out)
                return
        else:  # a string: ends with BEL or ST (ESC \ or the C1 ST)
            if self._string_esc:
                if char == "\\":
                    self._drop()
                    return
                # ESC starts a new sequence, which ends the string.
                self._drop()
                self._start("esc", ESC)
                self._step(char, out)
                return
            if char in ("\x07", _ST_C1):
                self._drop()
                return
            self._held += char
            self._string_esc = char == ESC
        limit = MAX_STRING_SEQUENCE if self._kind == "string" else MAX_CONTROL_SEQUENCE
        if len(self._held) > limit:
            self._give_up(out)


def terminal_safe(text: str) -> str:
    """A whole text (not streamed) made safe to print."""
    screen = TerminalText()
    return screen.feed(text) + screen.flush()
