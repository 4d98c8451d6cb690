"""Plain text, Markdown and source code: sections by headings, or by blank-line blocks."""

from __future__ import annotations

import re
from pathlib import Path

from app.engine.documents.text_clean import (
    decode_text,
    heading_path,
    make_sections,
    push_heading,
)
from app.engine.documents.types import Section

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BLOCKS = re.compile(r"\n[ \t]*\n")


def read_text(path: Path, data: bytes) -> list[Section]:
    return make_sections([(decode_text(data, path), None, None)])


def read_code(path: Path, data: bytes) -> list[Section]:
    text = decode_text(data, path).replace("\r\n", "\n")
    return make_sections((block, None, None) for block in _BLOCKS.split(text))


def read_markdown(path: Path, data: bytes) -> list[Section]:
    """Sections between ATX (``# Title``) and setext headings; fenced code is never a heading."""
    lines = decode_text(data, path).replace("\r\n", "\n").split("\n")
    parts: list[tuple[str, int | None, str | None]] = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []
    fence: str | None = None

    def flush() -> None:
        parts.append(("\n".join(body), None, heading_path(stack)))
        body.clear()

    for line in lines:
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            body.append(line)
            continue
        if opened:
            fence = opened.group(1)
            body.append(line)
            continue
        atx = _ATX.match(line)
        setext = _SETEXT.match(line)
        if atx:
            flush()
            push_heading(stack, len(atx.group(1)), atx.group(2))
        elif setext and body and body[-1].strip():
            title = body.pop()
            flush()
            push_heading(stack, 1 if setext.group(1)[0] == "=" else 2, title.strip())
        else:
            body.append(line)
    flush()
    return make_sections(parts)
