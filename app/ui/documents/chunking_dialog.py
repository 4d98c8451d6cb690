"""Chunk size and overlap of a collection, in the embedding model's tokens. Changing them means
indexing every document again, so the dialog says how many before it is accepted."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.documents import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS
from app.models.document_records import CollectionRecord
from app.ui.plain_text import plain_label

MAX_CHUNK_TOKENS = 8192


class ChunkingDialog(QDialog):
    def __init__(self, collection: CollectionRecord, documents: int,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Chunk size and overlap")
        self._original = (collection.chunk_size, collection.chunk_overlap)
        self._documents = documents
        self.size = QSpinBox(self)
        self.size.setRange(16, MAX_CHUNK_TOKENS)
        self.size.setSuffix(" tokens")
        self.size.setValue(collection.chunk_size)
        self.size.setToolTip(f"Default {DEFAULT_CHUNK_TOKENS}: a passage long enough to answer "
                             "from, short enough to be about one thing")
        self.overlap = QSpinBox(self)
        self.overlap.setSuffix(" tokens")
        self.overlap.setToolTip(f"Default {DEFAULT_OVERLAP_TOKENS}: text shared with the "
                                "previous passage, so a sentence cut at the edge is whole in one")
        self.warning = plain_label(parent=self)
        self.warning.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Chunk size", self.size)
        form.addRow("Overlap", self.overlap)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label(f"“{collection.name}”", parent=self))
        layout.addLayout(form)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        self.size.valueChanged.connect(self._update)
        self.overlap.valueChanged.connect(self._update)
        self._update()
        self.overlap.setValue(collection.chunk_overlap)

    def chosen(self) -> tuple[int, int]:
        return self.size.value(), self.overlap.value()

    def _update(self) -> None:
        self.overlap.setRange(0, self.size.value() - 1)  # the overlap stays under the size
        changed = self.chosen() != self._original
        if changed and self._documents:
            self.warning.setText(f"Changing these indexes all {self._documents} documents of "
                                 "the collection again. Until each is done, questions use "
                                 "its old passages.")
        else:
            self.warning.setText("")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(changed)


def ask_chunking(parent: QWidget, collection: CollectionRecord,
                 documents: int) -> tuple[int, int] | None:
    """The new (size, overlap), or None when the user kept the old ones."""
    dialog = ChunkingDialog(collection, documents, parent)
    try:
        if dialog.exec() == QDialog.DialogCode.Accepted:
            return dialog.chosen()
        return None
    finally:
        dialog.deleteLater()
