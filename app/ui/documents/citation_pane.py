"""The side pane a clicked citation opens in: which file, page and heading, and the passage in
its surroundings with the cited text highlighted and scrolled into view (issue 13).

Everything shown comes from documents, so all of it is plain text: labels that never guess
HTML and a read-only plain-text view, with bidirectional controls shown as \\ufffd (a
"\\u202e" in a passage would otherwise reverse what the user reads).
"""

from __future__ import annotations

import re
from pathlib import PurePath

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.models.document_records import Citation
from app.services.documents.citation_passage import ChunkSource, CitedPassage, cited_passage
from app.ui.plain_text import plain_label

HIGHLIGHT_LIGHT = QColor("#fff1a8")
HIGHLIGHT_DARK = QColor("#6b5b00")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _shown(text: str) -> str:
    return _BIDI_CONTROLS.sub("\ufffd", text)


def _utf16(text: str, index: int) -> int:
    """Qt's position (UTF-16 units) of Python's ``text[index]``: they differ after an emoji."""
    return len(text[:index].encode("utf-16-le")) // 2


class CitationPane(QFrame):
    """Hidden until `show_citation`; the close button hides it again."""

    closed = Signal()

    def __init__(self, store: ChunkSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.citation: Citation | None = None
        self.passage: CitedPassage | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.file_label = plain_label(parent=self)
        bold = QFont(self.file_label.font())
        bold.setBold(True)
        self.file_label.setFont(bold)
        self.file_label.setWordWrap(True)
        self.place_label = plain_label(parent=self)  # "Page 3 — Heading"
        self.place_label.setWordWrap(True)
        self.note_label = plain_label(parent=self)  # why only the saved text is shown
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: #8a6d00")
        self.note_label.hide()
        self.close_button = QToolButton(self)
        self.close_button.setText("Close")
        self.close_button.setToolTip("Close the citation")
        self.close_button.clicked.connect(self.close_pane)
        self.text_view = QPlainTextEdit(self)
        self.text_view.setReadOnly(True)
        self.text_view.setSizePolicy(QSizePolicy.Policy.Expanding,
                                     QSizePolicy.Policy.Expanding)

        top = QHBoxLayout()
        top.addWidget(self.file_label, 1)
        top.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.place_label)
        layout.addWidget(self.note_label)
        layout.addWidget(self.text_view, 1)
        self.hide()

    def show_citation(self, citation: Citation) -> None:
        """Show ``citation`` in its document (or its saved text when it cannot be)."""
        self.citation = citation
        self.passage = passage = cited_passage(self._store, citation)
        name = PurePath(citation.document_path).name or citation.document_path
        self.file_label.setText(_shown(f"[{citation.number}] {name}"))
        self.file_label.setToolTip(citation.document_path)
        place = [f"Page {citation.page}"] if citation.page is not None else []
        if citation.heading:
            place.append(citation.heading)
        self.place_label.setText(_shown(" — ".join(place)))
        self.place_label.setVisible(bool(place))
        self.note_label.setText(passage.note or "")
        self.note_label.setVisible(passage.note is not None)
        self.show()  # before scrolling: a hidden view has no layout to scroll in
        text = _shown(passage.text)
        self.text_view.setPlainText(text)
        start, end = passage.highlight
        self._highlight(_utf16(text, start), _utf16(text, end))

    def highlighted_text(self) -> str:
        """The text the view shows on a highlighted background (lines joined by newlines)."""
        lines = []
        block = self.text_view.document().begin()
        while block.isValid():
            pieces, fragments = [], block.begin()
            while not fragments.atEnd():
                fragment = fragments.fragment()
                if fragment.charFormat().background().style() != Qt.BrushStyle.NoBrush:
                    pieces.append(fragment.text())
                fragments += 1
            if pieces:
                lines.append("".join(pieces))
            block = block.next()
        return "\n".join(lines)

    def close_pane(self) -> None:
        self.hide()
        self.closed.emit()

    def _highlight(self, start: int, end: int) -> None:
        cursor = QTextCursor(self.text_view.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        marked = QTextCharFormat()
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        marked.setBackground(HIGHLIGHT_DARK if dark else HIGHLIGHT_LIGHT)
        cursor.mergeCharFormat(marked)
        self._scroll_to(start, end)
        # Again once the pane has been laid out: it may have only just been shown or widened.
        QTimer.singleShot(0, self, lambda: self._scroll_to(start, end))

    def _scroll_to(self, start: int, end: int) -> None:
        # The end first, then the start: the whole passage is in view when it fits, and its
        # beginning is when it does not.
        for position in (end, start):
            place = QTextCursor(self.text_view.document())
            place.setPosition(position)
            self.text_view.setTextCursor(place)
            self.text_view.ensureCursorVisible()
