"""Discover's one suggestion: an embedding model for chatting with documents.

Collections index documents with an embedding model. Hearth ships a small one
(all-MiniLM-L6-v2), so documents work without this; the suggestion names one well-known,
permissively licensed GGUF embedding repository for users who want better retrieval, and
searches for it rather than listing anything as "popular".
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

SUGGESTED_EMBEDDING_REPO = "nomic-ai/nomic-embed-text-v1.5-GGUF"  # Apache-2.0, 137M parameters
SUGGESTION_TEXT = (
    "For chatting with documents: collections turn files into vectors with an embedding "
    "model. Hearth's built-in all-MiniLM-L6-v2 works offline; nomic-embed-text v1.5 "
    "(Apache-2.0, 137M parameters, long inputs) usually finds passages better.")


class EmbeddingSuggestion(QFrame):
    """A one-line card; its button asks the page to search for the suggested repository."""

    searchRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("embeddingSuggestion")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel(SUGGESTION_TEXT)
        self.text.setWordWrap(True)
        self.button = QPushButton("Find nomic-embed-text")
        self.button.setObjectName("embeddingSuggestionButton")
        self.button.setToolTip(f"Search the Hub for {SUGGESTED_EMBEDDING_REPO}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.button)
        self.button.clicked.connect(lambda: self.searchRequested.emit(SUGGESTED_EMBEDDING_REPO))
