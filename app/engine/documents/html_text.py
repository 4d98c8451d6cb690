"""HTML (and EPUB's XHTML) to sections: script/style dropped, h1–h6 give the heading path.

Built on the stdlib's streaming `html.parser`, which keeps no tree, so deeply nested or huge
markup costs linear time and no recursion. Nothing in the page is fetched or run.
"""

from __future__ import annotations

from html.parser import HTMLParser

from app.engine.documents.text_clean import heading_path, push_heading

_SKIP = {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
           "footer", "nav", "aside", "blockquote", "pre", "hr", "dd", "dt", "dl", "figure",
           "figcaption", "main", "title", "body", "caption"}
_CELLS = {"td", "th"}


class _SectionParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[str, int | None, str | None]] = []
        self._stack: list[tuple[int, str]] = []
        self._body: list[str] = []
        self._title: list[str] | None = None  # collecting a heading's text
        self._title_level = 0
        self._skip = 0
        self._row_cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            return
        if tag == "body":
            self._skip = 0  # an unclosed <head> (or <style>) ends where the body begins
        if self._skip:
            return
        if tag in _HEADINGS and self._title is None:
            self._title = []
            self._title_level = _HEADINGS[tag]
        elif tag == "tr":
            self._row_cells = 0  # the row's line ends at </tr>
        elif tag in _CELLS:
            if self._row_cells:
                self._body.append(" | ")
            self._row_cells += 1
        elif tag in _BLOCKS:
            self._newline(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip and tag in _BLOCKS:
            self._newline(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag in _HEADINGS and self._title is not None:
            self.flush()
            push_heading(self._stack, self._title_level, "".join(self._title))
            self._title = None
        elif tag in _BLOCKS:
            self._newline(tag)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        (self._title if self._title is not None else self._body).append(data)

    def _newline(self, tag: str) -> None:
        if tag in ("tr", "table"):
            self._row_cells = 0
        self._body.append("\n\n" if tag in ("p", "table", "blockquote", "pre") else "\n")

    def flush(self) -> None:
        text = "".join(self._body)
        # Inline whitespace in HTML is not meaningful; newlines from block tags are kept.
        lines = (" ".join(line.split()) for line in text.split("\n"))
        self.parts.append(("\n".join(lines), None, heading_path(self._stack)))
        self._body.clear()


def html_parts(markup: str) -> list[tuple[str, int | None, str | None]]:
    """``(text, None, heading path)`` parts of ``markup`` in reading order."""
    parser = _SectionParser()
    parser.feed(markup)
    parser.close()
    parser.flush()
    return parser.parts
