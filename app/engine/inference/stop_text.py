"""Streamed text with stop strings: emit what is safe, hold back what may begin a stop string."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopTextStream:
    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = [s for s in stop if s]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # decoded text not yet emitted
        self.text = ""  # everything emitted so far
        self.stopped = False

    def feed(self, piece: bytes) -> str:
        """Add a token's bytes; return the text that can be shown now."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(piece)
        for stop in self._stop:
            at = self._pending.find(stop)
            if at >= 0:
                self.stopped = True
                return self._emit(self._pending[:at])
        keep = self._held_back()
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(out):]
        return self._emit(out)

    def flush(self) -> str:
        """The reply ended without a stop string: release whatever was held back."""
        if self.stopped:
            return ""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return self._emit(rest)

    def _held_back(self) -> int:
        longest = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:n]):
                    longest = max(longest, n)
                    break
        return longest

    def _emit(self, text: str) -> str:
        self.text += text
        return text
