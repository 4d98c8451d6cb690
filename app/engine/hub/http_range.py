"""Checking that a server's partial answer holds the bytes that were asked for. No Qt."""

from __future__ import annotations

import re

_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", re.IGNORECASE)


def range_problem(content_range: str | None, offset: int, size: int) -> str | None:
    """Why a 206 answer to ``Range: bytes=offset-`` for a file of ``size`` bytes cannot be
    appended at ``offset``, or None when its ``Content-Range`` is exactly that range."""
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    if match is None:
        return f"a partial answer without a valid Content-Range ({content_range!r})"
    start, end, total = int(match[1]), int(match[2]), match[3]
    if start != offset or end != size - 1 or (total != "*" and int(total) != size):
        return (f"bytes {start}-{end}/{total} in answer to a request for bytes {offset}-"
                f"{size - 1}/{size}")
    return None
