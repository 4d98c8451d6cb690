"""Markdown from outside (model replies, Hub model cards) → HTML that can only ever be text.

What comes out holds no raw HTML (shown as text), no images (each becomes the text
"[image: alt — address]", so nothing is fetched to draw it), no bidirectional overrides (shown
as �) and links only as anchors that open through `app.ui.link_policy`. Documents showing
it are `InertDocument`s, which load no resource either, so a missed case still fetches nothing.
A reply's citation markers ("[2]" where the reply has a citation 2) become anchors
``cite:2``, which the chat opens in its citation pane rather than as links.

The work is bounded: only the first MARKDOWN_LIMIT characters, up to the first line nested
deeper than the limits below, go through Markdown (whose parsers recurse and can be quadratic
on nesting); the rest is shown as escaped plain text, with a break opportunity in every long
unbroken run (a 1 MB line with none takes Qt's line breaker tens of seconds), and anything past
SHOWN_LIMIT is left out with a note (the message itself is kept whole and can be copied).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from dataclasses import dataclass
from html import escape

import markdown
from markdown.extensions import Extension
from markdown.extensions.fenced_code import FencedBlockPreprocessor
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

MARKDOWN_LIMIT = 24_000  # characters given to Markdown (about 6,000 tokens); the rest is plain
SHOWN_LIMIT = 100_000  # characters shown at all (the message is kept whole and can be copied)
MAX_QUOTE_DEPTH = 16  # ">" levels
MAX_INDENT = 96  # leading columns (24 list levels); deeper lists make Markdown recurse away
MAX_BRACKET_DEPTH = 32  # nested "[": Markdown's link matching is quadratic in it
MAX_ADDRESS_SHOWN = 120  # characters of an image address shown in its place
BREAK_EVERY = 80  # a zero-width space after this many characters without a break

_QUOTE_PREFIX = re.compile(r"[ \t>]*")
_LONG_RUN = re.compile(rf"\S{{{BREAK_EVERY}}}")
_BRACKETS = re.compile(r"[^\[\]\n]+")
PLAIN_STYLE = "white-space: pre-wrap"
# Bidirectional embeddings, overrides and isolates make "\u202eexe.txt" read "txt.exe": shown
# as "\ufffd" instead (the marks U+200E/U+200F, which reorder nothing by themselves, stay).
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
CITE_SCHEME = "cite:"
_CITATION = re.compile(r"\[(\d{1,4})\]")
_NOT_CITED_IN = frozenset({"a", "code", "pre"})  # links and code keep their text as it is


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inert_text(text: str) -> str:
    """``text`` (a file name, a heading) escaped for HTML, with bidirectional controls shown
    as \ufffd so "\u202efdp.exe" cannot pass for another name."""
    return escape(_BIDI_CONTROLS.sub("\ufffd", text))


class _CitationLinks(Treeprocessor):
    """"[n]" in the reply's text, for a citation number n it has, becomes an anchor cite:n.
    Works on the Markdown tree, so code spans, code blocks and links are never touched and
    nothing from the reply is ever read as markup."""

    numbers: frozenset[int] = frozenset()

    def run(self, root: etree.Element) -> None:
        if self.numbers:
            self._walk(root)

    def _walk(self, element: etree.Element) -> None:
        if element.tag in _NOT_CITED_IN:
            return
        if element.text and not isinstance(element.text, AtomicString):
            element.text, anchors = self._split(element.text)
            for position, anchor in enumerate(anchors):
                element.insert(position, anchor)
        for child in list(element):
            self._walk(child)
            if child.tail and not isinstance(child.tail, AtomicString):
                child.tail, anchors = self._split(child.tail)
                at = list(element).index(child) + 1
                for offset, anchor in enumerate(anchors):
                    element.insert(at + offset, anchor)

    def _split(self, text: str) -> tuple[str, list[etree.Element]]:
        """The text before the first citation, and an anchor per citation carrying the text
        after it as its tail."""
        lead: str | None = None
        anchors: list[etree.Element] = []
        position = 0
        for match in _CITATION.finditer(text):
            if int(match.group(1)) not in self.numbers:
                continue
            before = text[position:match.start()]
            if anchors:
                anchors[-1].tail = before
            else:
                lead = before
            anchor = etree.Element("a", {"href": f"{CITE_SCHEME}{int(match.group(1))}"})
            anchor.text = AtomicString(match.group())
            anchors.append(anchor)
            position = match.end()
        if not anchors:
            return text, []
        anchors[-1].tail = text[position:]
        return lead or "", anchors


CODE_LABEL_ANCHOR = "hearthcode-"  # the anchor name on a fenced code block's label line
MAX_LANGUAGE_SHOWN = 32


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block as written: its code without the fences, and its language."""

    language: str
    code: str


class _CodeLabels(Preprocessor):
    """Before each fenced code block, a label line with its language, carrying an anchor name
    ``hearthcode-N`` (raw HTML from the reply is never read, so only this can make one); the
    code itself is kept in ``blocks`` for the block's Copy button. Runs just before
    fenced_code, with its pattern, so both see the same blocks."""

    blocks: list[CodeBlock]
    enabled = True

    def run(self, lines: list[str]) -> list[str]:
        self.blocks = []
        text = "\n".join(lines)
        if not self.enabled or ("```" not in text and "~~~" not in text):
            return lines
        index = 0
        while match := FencedBlockPreprocessor.FENCED_BLOCK_RE.search(text, index):
            attrs = re.search(r"\.?([\w#+-][\w#.+-]*)", match.group("attrs") or "")
            language = (match.group("lang") or (attrs.group(1) if attrs else "") or "")
            language = shorten(language, MAX_LANGUAGE_SHOWN)
            label = (f'<p style="color: #777777"><small><a name="{CODE_LABEL_ANCHOR}'
                     f'{len(self.blocks)}">{escape(language or "code")}</a></small></p>')
            self.blocks.append(CodeBlock(language, match.group("code").removesuffix("\n")))
            placeholder = self.md.htmlStash.store(label)
            text = f"{text[:match.start()]}\n{placeholder}\n\n{text[match.start():]}"
            index = match.start() + len(placeholder) + 3 + len(match.group())
        return text.split("\n")


class _ImagesAsText(Treeprocessor):
    """Every <img> becomes the text "[image: alt — address]": shown, never fetched."""

    def run(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            for position, child in enumerate(list(parent)):
                if child.tag != "img":
                    continue
                alt = child.get("alt") or "image"
                address = shorten(child.get("src") or "", MAX_ADDRESS_SHOWN)
                text = etree.Element("span")
                text.set("style", "color: #777777")
                text.text = f"[image: {alt} — {address}]" if address else f"[image: {alt}]"
                text.tail = child.tail
                parent[position] = text


class _InertExtension(Extension):
    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 - Markdown's API
        # Raw HTML is shown as text, never interpreted.
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        # After "inline" (20), which makes the <img> elements.
        md.treeprocessors.register(_ImagesAsText(md), "images_as_text", 15)
        md.treeprocessors.register(_CitationLinks(md), "citation_links", 14)
        md.preprocessors.register(_CodeLabels(md), "code_labels", 26)  # fenced_code is 25


def _unsafe_from(text: str) -> int:
    """Where in ``text`` (a character offset) nesting first gets too deep; len(text) if never."""
    offset = depth = 0
    for line in text.splitlines(keepends=True):
        prefix = _QUOTE_PREFIX.match(line).group()  # type: ignore[union-attr]
        indent = len(prefix.expandtabs(4)) - prefix.count(">")
        depth = max(0, depth) if line.strip() else 0  # a blank line ends a paragraph
        for bracket in _BRACKETS.sub("", line):
            depth += 1 if bracket == "[" else -1
            if depth > MAX_BRACKET_DEPTH:
                return offset
        if prefix.count(">") > MAX_QUOTE_DEPTH or indent > MAX_INDENT:
            return offset
        offset += len(line)
    return len(text)


def plain_html(text: str) -> str:
    """``text`` as escaped, wrapping plain text (white space kept)."""
    if not text:
        return ""
    breakable = _LONG_RUN.sub(lambda run: run.group() + "\u200b", text)
    return f'<p style="{PLAIN_STYLE}">{escape(breakable, quote=False)}</p>'


_CODE_BLOCK_OPEN = re.compile(r'<pre><code(?: class="[^"<>]*")?>')
_MARKER = "hearthcodemarker"


class MarkdownRenderer:
    """Markdown → HTML with inline styles (QTextDocument understands no external CSS).

    With ``highlight=False`` code blocks come out in the very frame the highlighter gives them
    (so the laid-out height is the same) but uncoloured: lexing is most of the cost of a reply
    with code, and a view can colour its rows once they are on screen.
    """

    def __init__(self, dark: bool) -> None:
        extensions = ["fenced_code", "tables", "sane_lists", "nl2br", _InertExtension()]
        self._md = markdown.Markdown(
            extensions=[*extensions, "codehilite"],
            extension_configs={
                "codehilite": {
                    "noclasses": True,
                    "guess_lang": False,
                    "pygments_style": "monokai" if dark else "default",
                }
            },
        )
        self._md_plain = markdown.Markdown(extensions=extensions)
        labels = self._md.preprocessors["code_labels"]
        labels.enabled = False  # type: ignore[attr-defined]  # the frame alone
        self._code_open, _, self._code_close = self._markdown(
            f"```\n{_MARKER}\n```", highlight=True).partition(_MARKER)
        labels.enabled = True  # type: ignore[attr-defined]
        self.code_blocks: tuple[CodeBlock, ...] = ()  # the fenced blocks of the last call

    def has_code(self, html: str) -> bool:
        return self._code_open in html

    def __call__(self, text: str, *, highlight: bool = True,
                 citations: frozenset[int] = frozenset()) -> str:
        """``citations``: the numbers whose "[n]" become ``cite:n`` anchors."""
        for md in (self._md, self._md_plain):
            md.treeprocessors["citation_links"].numbers = citations  # type: ignore[attr-defined]
        shown = _BIDI_CONTROLS.sub("\ufffd", text[:SHOWN_LIMIT])
        cut = min(MARKDOWN_LIMIT, _unsafe_from(shown[:MARKDOWN_LIMIT]))
        if cut < len(shown):  # end Markdown on a line boundary, so no construct is cut in two
            newline = shown.rfind("\n", 0, cut)
            cut = newline + 1 if newline >= 0 else 0
        self.code_blocks = ()
        html = self._markdown(shown[:cut], highlight) + plain_html(shown[cut:])
        if len(text) > len(shown):
            html += (f'<p style="color: #777777"><i>{len(text) - len(shown):,} more characters '
                     "not shown here; copy the message to get all of it.</i></p>")
        return html

    def _markdown(self, text: str, highlight: bool) -> str:
        if not text.strip():
            return ""
        md = self._md if highlight else self._md_plain
        try:
            html = md.reset().convert(text)
        except RecursionError:  # a structure the limits above did not foresee: show it as text
            return plain_html(text)
        self.code_blocks = tuple(md.preprocessors["code_labels"].blocks)  # type: ignore[attr-defined]
        # QTextDocument draws tables without borders unless told, and shows the newline
        # that closes every code block as an empty last line.
        html = html.replace("<table>", '<table border="1" cellspacing="0" cellpadding="4">')
        html = html.replace("\n</code></pre>", "</code></pre>")
        if not highlight:
            html = _CODE_BLOCK_OPEN.sub(self._code_open, html)
            html = html.replace("</code></pre>", self._code_close)
        return html
