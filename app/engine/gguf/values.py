"""Checked Python values from a GGUF file's metadata, which whoever made the file chose.

A count must be a whole number in a range llama.cpp could use: a negative, fractional, infinite
or absurd value (a 2^40-layer model) is refused with ``BadValue`` instead of reaching the memory
estimate, the database or a loop. Text meant for display loses control characters, so a model
name cannot drive the terminal (ANSI escapes) or reorder a line (bidi overrides).
"""

from __future__ import annotations

import math
from typing import Any

MAX_COUNT = (1 << 32) - 1  # llama.cpp reads these keys as 32-bit unsigned values
MAX_LAYERS = 4096  # llama.cpp itself stops at 512 (LLAMA_MAX_LAYERS)
MAX_LABEL = 200  # characters of a name or architecture kept for display


class BadValue(ValueError):
    """A metadata value that cannot be what its key says; the message names the key."""


def count(value: Any, key: str, limit: int = MAX_COUNT) -> int:
    """A whole number in 0..limit (0 when absent); the largest entry of a per-layer array."""
    if value is None:
        return 0
    if isinstance(value, list):
        return max((count(item, key, limit) for item in value), default=0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{key} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise BadValue(f"{key} is {value}, not a whole number")
        value = int(value)
    if not 0 <= value <= limit:
        raise BadValue(f"{key} is {value:,}, outside 0 to {limit:,}")
    return value


def optional_count(value: Any, key: str, limit: int = MAX_COUNT) -> int | None:
    """Like ``count``, with None for absent or zero."""
    return count(value, key, limit) or None


def label(value: Any, fallback: str) -> str:
    """Printable text of at most MAX_LABEL characters, or ``fallback`` when there is none."""
    if not isinstance(value, str):
        return fallback
    return printable(value[: MAX_LABEL * 2])[:MAX_LABEL] or fallback


def printable(text: str) -> str:
    """``text`` on one line without control, format (bidi), surrogate or unassigned characters."""
    kept = "".join(ch if ch.isprintable() else " " if ch.isspace() else "" for ch in text)
    return " ".join(kept.split())
