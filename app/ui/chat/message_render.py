"""One chat message → the laid-out pieces its bubble shows: title, badge, thinking, body, stats.

Everything the message holds came from outside (the model, an imported chat), so its Markdown
goes through `MarkdownRenderer` into `InertDocument`s, which load nothing. A reply made with
documents shows which mode was used above its text and its sources after it; its "[n]" and each
source are anchors ``cite:n`` (file names and headings come from documents: escaped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from pathlib import PurePath

from PySide6.QtGui import QPalette, QTextDocument
from PySide6.QtWidgets import QWidget

from app.engine.types import GenerationStats
from app.models.document_records import Citation, ReplySources
from app.models.records import MessageRecord, ToolTurn
from app.ui.chat.pretty_json import json_block
from app.ui.chat.tool_blocks import (
    calls_html,
    expanded_html,
    result_summary,
    tool_badge,
    tool_title,
)
from app.ui.inert_document import InertDocument
from app.ui.markdown_html import CITE_SCHEME, CodeBlock, MarkdownRenderer, inert_text, shorten

ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool"}
BADGES = {"partial": "partial", "failed": "failed", "streaming": "generating…"}
STOP_REASONS = {"length": "hit the token limit", "cancelled": "stopped", "context": "context full"}
GREY = "#777777"
MAX_SOURCE_LABEL = 160  # characters of a file name or heading in the Sources list


def source_label(citation: Citation) -> str:
    """"[n] file name, page p — heading" as plain text."""
    label = f"[{citation.number}] {PurePath(citation.document_path).name or citation.document_path}"
    if citation.page is not None:
        label += f", page {citation.page}"
    if citation.heading:
        label += f" — {citation.heading}"
    return shorten(label, MAX_SOURCE_LABEL)


def sources_html(sources: ReplySources) -> str:
    """The "Sources" list after a reply: one cite:n anchor per citation."""
    if not sources.citations:
        return ""
    items = "".join(f'<li><a href="{CITE_SCHEME}{c.number}">{inert_text(source_label(c))}</a></li>'
                    for c in sources.citations)
    return f'<p style="color:{GREY}"><small>Sources</small></p><ul>{items}</ul>'


def stats_text(stats: GenerationStats) -> str:
    parts = [
        f"{stats.tokens_per_second:.1f} tok/s",
        f"TTFT {stats.time_to_first_token:.2f} s",
        f"{stats.generated_tokens} tokens",
    ]
    if stats.stop_reason in STOP_REASONS:
        parts.append(STOP_REASONS[stats.stop_reason])
    return " · ".join(parts)


@dataclass
class Rendered:
    signature: tuple[object, ...]
    title: str
    badge: str | None
    thinking_label: str | None
    thinking: QTextDocument | None
    body: QTextDocument
    rendered_at: float = 0.0  # time.monotonic() when converted
    cost: float = 0.0  # seconds the conversion took
    has_text: bool = False  # the body shows some of the message (not only a placeholder)
    uncoloured: bool = False  # its code blocks are shown without colours for now
    height: tuple[int, int] | None = None  # (width, row height) last laid out
    code_blocks: tuple[CodeBlock, ...] = ()  # the answer's fenced blocks (their Copy buttons)


class MessageRenderer:
    def __init__(self, view: QWidget) -> None:
        self._view = view  # its font is the documents' font
        dark = view.palette().color(QPalette.ColorRole.Base).lightness() < 128
        self.dark = dark  # code colours for a dark background (the view re-renders on a change)
        self._markdown = MarkdownRenderer(dark)

    def render(
        self,
        record: MessageRecord,
        stats: GenerationStats | None,
        expanded: bool,
        signature: tuple[object, ...],
        highlight: bool,
        pretty_json: bool = False,
    ) -> Rendered:
        """``expanded``: the thinking block is open; ``highlight``: colour code blocks now;
        ``pretty_json``: a finished reply that is JSON is shown indented in a code block."""
        started = time.monotonic()
        turn = record.tool_turn
        if turn is not None:
            return self._tool_turn(record, turn, expanded, signature, started)
        split = record.thinking if record.role == "assistant" else None
        answer = split.answer if split else record.content
        if pretty_json and record.status != "streaming":
            answer = json_block(answer) or answer
        sources = record.sources if record.role == "assistant" else None
        numbers = frozenset(c.number for c in sources.citations) if sources else frozenset()
        html = (self._markdown(answer, highlight=highlight, citations=numbers)
                if answer.strip() else "")
        code_blocks = self._markdown.code_blocks if html else ()
        uncoloured = not highlight and self._markdown.has_code(html)
        if not html and record.status == "streaming":
            html = "<p><i>…</i></p>"
        if sources is not None:
            if sources.explanation:
                html = (f'<p style="color:{GREY}"><small>{inert_text(sources.explanation)}'
                        f"</small></p>{html}")
            html += sources_html(sources)
        if record.status == "failed" and record.error:
            html += f'<p style="color:#b00020">Failed: {escape(record.error)}</p>'
        if record.tool_calls:
            html += calls_html(record.tool_calls)
        if stats is not None and record.role == "assistant":
            html += f'<p style="color:#777777"><small>{escape(stats_text(stats))}</small></p>'
        body = self._document(html)
        thinking_label = thinking = None
        if split is not None and (split.thinking or split.thinking_open):
            arrow = "▾" if expanded else "▸"
            if split.thinking_open:
                thinking_label = f"{arrow} Thinking…"
            else:
                took = stats.thinking_seconds if stats is not None else 0.0
                duration = f" for {took:.1f} s" if took > 0 else ""
                thinking_label = f"{arrow} Thought{duration} · {len(split.thinking.split())} words"
            if expanded:
                thinking_html = self._markdown(split.thinking, highlight=highlight)
                uncoloured |= not highlight and self._markdown.has_code(thinking_html)
                thinking = self._document(thinking_html)
        finished = time.monotonic()
        return Rendered(signature, ROLE_TITLES[record.role], BADGES.get(record.status),
                        thinking_label, thinking, body, rendered_at=finished,
                        cost=finished - started, has_text=bool(answer.strip()),
                        uncoloured=uncoloured, code_blocks=code_blocks)

    def _tool_turn(self, record: MessageRecord, turn: ToolTurn, expanded: bool,
                   signature: tuple[object, ...], started: float) -> Rendered:
        """A tool result: a collapsible block, "tool(args…) → result…" when closed."""
        label = ("▾ " if expanded else "▸ ") + result_summary(turn, record.content)
        details = self._document(expanded_html(turn, record.content)) if expanded else None
        finished = time.monotonic()
        return Rendered(signature, tool_title(turn), tool_badge(turn), label, details,
                        self._document(""), rendered_at=finished, cost=finished - started,
                        has_text=True)

    def _document(self, html: str) -> QTextDocument:
        # No Qt parent: a replaced or evicted document must be freed with its last reference.
        document = InertDocument()  # loads no image or style sheet the HTML might name
        document.setDefaultFont(self._view.font())
        document.setDocumentMargin(0)
        document.setHtml(html)
        return document
