"""The server's endpoints, each with buttons that copy a ready `curl` or Python snippet.

The snippets name the model picked above the list (loaded models first, then the library) and
the server's current URL and key; the last copied snippet is shown below so it can be read first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.developer.snippets import ENDPOINTS, Endpoint, curl_snippet, python_snippet
from app.ui.plain_text import plain_label

PLACEHOLDER_MODEL = "MODEL_ID"

Snippet = Callable[[Endpoint, str, str, str | None], str]


class EndpointsPanel(QGroupBox):
    def __init__(self, base_url: Callable[[], str], key: Callable[[], str | None],
                 parent: QWidget | None = None) -> None:
        super().__init__("Endpoints", parent)
        self._base_url = base_url
        self._key = key
        self._kinds: dict[str, str] = {}  # model id → "llm" / "embeddings"
        self.model_combo = QComboBox()
        self.model_combo.setObjectName("snippetModel")
        self.model_combo.setMinimumContentsLength(24)
        self.model_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.url_label = plain_label()
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.preview = QPlainTextEdit()
        self.preview.setObjectName("snippetPreview")
        self.preview.setReadOnly(True)
        self.preview.setFont(mono)
        self.preview.setPlaceholderText("Copy a snippet to see it here.")
        self.preview.setFixedHeight(96)
        self.copied_label = plain_label()
        self.copied_label.setStyleSheet("color: palette(placeholder-text);")

        top = QHBoxLayout()
        top.addWidget(QLabel("Examples for"))
        top.addWidget(self.model_combo, 1)
        top.addSpacing(12)
        top.addWidget(QLabel("at"))
        top.addWidget(self.url_label, 1)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        self.copy_buttons: dict[tuple[str, str], QPushButton] = {}
        for row, endpoint in enumerate(ENDPOINTS):
            method = QLabel(endpoint.method)
            method.setStyleSheet("font-weight: 600; color: #3d6fb6;")
            path = QLabel(endpoint.path)
            path.setFont(mono)
            grid.addWidget(method, row, 0)
            grid.addWidget(path, row, 1)
            grid.addWidget(QLabel(endpoint.summary), row, 2)
            for column, (label, make) in enumerate((("curl", curl_snippet),
                                                    ("Python", python_snippet))):
                button = QPushButton(f"Copy {label}")
                button.clicked.connect(
                    lambda _=False, e=endpoint, m=make, n=label: self.copy(e, m, n))
                grid.addWidget(button, row, 3 + column)
                self.copy_buttons[(endpoint.path, label)] = button
        grid.setColumnStretch(2, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid)
        layout.addWidget(self.preview)
        layout.addWidget(self.copied_label)
        self.refresh_url()

    def set_models(self, models: Sequence[tuple[str, str]]) -> None:
        """(id, kind) pairs, the loaded ones first; keeps the current pick if it is still there."""
        kinds = dict(models)
        if kinds == self._kinds:
            return
        current = self.model_combo.currentText()
        self._kinds = kinds
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(list(kinds))
        if current in kinds:
            self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)

    def model_for(self, endpoint: Endpoint) -> str:
        chosen = self.model_combo.currentText()
        if endpoint.kind != "embeddings" or self._kinds.get(chosen) == "embeddings":
            return chosen or PLACEHOLDER_MODEL
        # /v1/embeddings answers only embedding models: name one if any is known.
        return next((m for m, kind in self._kinds.items() if kind == "embeddings"),
                    "EMBEDDING_MODEL_ID")

    def snippet(self, endpoint: Endpoint, make: Snippet) -> str:
        return make(endpoint, self._base_url(), self.model_for(endpoint), self._key())

    def copy(self, endpoint: Endpoint, make: Snippet, label: str) -> str:
        text = self.snippet(endpoint, make)
        QGuiApplication.clipboard().setText(text)
        self.preview.setPlainText(text)
        self.copied_label.setText(f"Copied the {label} example for {endpoint.path}.")
        return text

    def refresh_url(self) -> None:
        self.url_label.setText(self._base_url())
