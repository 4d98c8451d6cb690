"""Which regex ``pattern``s the converter turns into a grammar faithfully, writing valid JSON."""

from __future__ import annotations

import re
from typing import Any

from app.engine.structured.schema_errors import SchemaTooComplex

MAX_REPEAT = 512  # a {m,n} count: the grammar spells each repetition out
_ESCAPABLE = set("[]()|{}*+?")  # escapes the converter turns into literal characters
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


def pattern_problem(pattern: Any, where: str) -> str | None:
    """Why ``pattern`` can't be honoured (None: it can). The converter copies other escapes
    such as \\d into the grammar, which llama.cpp refuses, and writes quotes and backslashes
    raw into the JSON string."""
    if not isinstance(pattern, str) or len(pattern) < 2 or pattern[0] != "^" \
            or pattern[-1] != "$" or pattern.endswith("\\$"):
        return "must be anchored with ^ and $"
    body, i = pattern[1:-1], 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body) or body[i + 1] not in _ESCAPABLE:
                return "escapes such as \\d or \\. (use [0-9] or [.])"
            i += 2
            continue
        if _NEEDS_ESCAPE.match(c):
            return "quotes, backslashes or control characters"
        if c in "^$":
            return "anchors inside the pattern"
        if c == "(" and body[i + 1:i + 2] == "?":
            return "lookarounds and special groups"
        if c == "[":
            end = body.find("]", i + 1)
            if end < 0:
                return "an unclosed character class"
            chars = body[i + 1:end]
            if chars.startswith("^") or "\\" in chars:
                return "negated classes or escapes in a character class"
            for a, b in re.findall(r"(.)-(.)", chars):
                if ord(a) <= 0x22 <= ord(b) or ord(a) <= 0x5C <= ord(b) or ord(a) < 0x20:
                    return "a character range that includes quotes or backslashes"
            if _NEEDS_ESCAPE.search(chars):
                return "quotes, backslashes or control characters"
            i = end + 1
            continue
        if c == "{":
            end = body.find("}", i)
            counts = re.findall(r"\d+", body[i:end if end > 0 else len(body)])
            if any(int(n) > MAX_REPEAT for n in counts):
                raise SchemaTooComplex(f"{where} repeats more than {MAX_REPEAT} times.")
        i += 1
    return None
