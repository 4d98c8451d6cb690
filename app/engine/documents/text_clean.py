"""Untrusted text made plain: decoded, control characters dropped, sections positioned."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from pathlib import Path

from app.engine.documents.types import SECTION_SEPARATOR, DocumentError, Section

# C0/C1 controls except tab and newline, plus bidi overrides/isolates, which can make text
# read differently on screen than in the prompt (a prompt-injection trick).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def clean_text(text: str) -> str:
    """``text`` with normalised newlines, no control characters, no runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def decode_text(data: bytes, path: str | Path) -> str:
    """Bytes of a text file as str; `DocumentError` when they are not text."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentError(path, f"not valid {encoding} text") from exc
    head = data[:65536]
    # NUL bytes never occur in text without a UTF-16 BOM; many controls mean a binary file.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or controls > 8 + len(head) // 50:
        raise DocumentError(path, "not a text file (binary content)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Legacy 8-bit text: cp1252 is what such files nearly always are; latin-1 never fails.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def make_sections(parts: Iterable[tuple[str, int | None, str | None]]) -> list[Section]:
    """Sections from ``(text, page, heading)`` parts: cleaned, empty ones dropped, positioned."""
    sections: list[Section] = []
    offset = 0
    for raw, page, heading in parts:
        text = clean_text(raw)
        if not text:
            continue
        if sections:
            offset += len(SECTION_SEPARATOR)
        sections.append(Section(text, page, clean_text(heading) if heading else None, offset))
        offset += len(text)
    return sections


def heading_path(stack: list[tuple[int, str]]) -> str | None:
    return " > ".join(title for _, title in stack if title) or None


def push_heading(stack: list[tuple[int, str]], level: int, title: str) -> None:
    """Make ``title`` (at ``level``, 1 = top) the innermost heading of ``stack``."""
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, " ".join(title.split())))
