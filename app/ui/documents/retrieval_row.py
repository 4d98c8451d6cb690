"""Retrieval's two settings, for every chat: how many passages a question gets (top-k) and how
similar the best one must be (the relevance threshold), saved as the user changes them."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QSpinBox, QWidget

from app.models.store import Store
from app.services.documents import (
    RetrievalSettings,
    retrieval_settings,
    save_retrieval_settings,
)
from app.services.documents.chat_documents import MAX_TOP_K


class RetrievalRow(QWidget):
    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.top_k = QSpinBox(self)
        self.top_k.setRange(1, MAX_TOP_K)
        self.top_k.setPrefix("Top ")
        self.top_k.setSuffix(" passages")
        self.threshold = QDoubleSpinBox(self)
        self.threshold.setRange(-1.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setPrefix("relevance ≥ ")
        self.threshold.setToolTip("The best passage must be at least this similar to the "
                                  "question; otherwise the chat says the documents have "
                                  "nothing on it")
        settings = retrieval_settings(store)
        self.top_k.setValue(settings.top_k)
        self.threshold.setValue(settings.threshold)
        self.top_k.valueChanged.connect(self._save)
        self.threshold.valueChanged.connect(self._save)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.top_k)
        row.addWidget(self.threshold)

    def _save(self) -> None:
        save_retrieval_settings(self._store, RetrievalSettings(self.top_k.value(),
                                                               self.threshold.value()))
