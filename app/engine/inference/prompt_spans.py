"""Find where each message's text ended up in a rendered chat template.

The template decides the prompt's structure; the messages (user text, file contents, tool
results, earlier replies) are untrusted and must be tokenized as plain text. Searching the
prompt for a message's text is not enough: a message reading "<start_of_turn>" would match the
template's own "<start_of_turn>" first. So the template is rendered a second time with each
content replaced by a unique marker; the text around the markers is the template's structure, and
the real prompt must be exactly that structure with each content (whole or trimmed) in the
markers' places. Where it is not (the template rewrote a content, or its structure depends on
what the content says), the spans are unknown and the caller falls back to a safe choice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Private-use characters: never in a template's own text, untouched by trim/upper/escape filters.
_MARKER = re.compile("\ue000(\\d+)\ue001")


@dataclass(frozen=True)
class TextSpan:
    """Characters ``start:end`` of a rendered prompt."""

    start: int
    end: int


def marker(index: int) -> str:
    """The stand-in rendered in place of content number ``index``."""
    return f"\ue000{index}\ue001"


def match_contents(
    text: str, marked: str, contents: Sequence[str]
) -> tuple[TextSpan, ...] | None:
    """Where ``contents`` sit in ``text``, given the same conversation rendered as ``marked``
    with content ``i`` replaced by ``marker(i)``; None when ``text`` does not follow that shape.

    A content may appear several times or not at all (templates drop or repeat turns); empty
    contents yield no span. Contents are matched whole, else stripped (templates ``| trim``),
    else JSON-escaped (Llama 3.1 writes a tool result ``| tojson``).
    """
    if any(_MARKER.search(c) for c in contents):
        return None  # a content imitating a marker could shift the match
    pieces = _MARKER.split(marked)  # structure, index, structure, index, …, structure
    spans: list[TextSpan] = []
    pos = 0
    for k, piece in enumerate(pieces):
        if k % 2 == 0:
            if not text.startswith(piece, pos):
                return None
            pos += len(piece)
            continue
        index = int(piece)
        if index >= len(contents):
            return None
        following = pieces[k + 1]  # always present: split leaves structure at both ends
        content = contents[index]
        escaped = json.dumps(content, ensure_ascii=False)[1:-1]
        for candidate in dict.fromkeys((content, content.strip(), escaped)):
            end = pos + len(candidate)
            if text.startswith(candidate, pos) and text.startswith(following, end):
                if candidate:
                    spans.append(TextSpan(pos, end))
                pos = end
                break
        else:
            return None
    return tuple(spans) if pos == len(text) else None
