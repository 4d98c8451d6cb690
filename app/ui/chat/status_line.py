"""Under the composer: speed of the last reply, time to first token, context used, notices."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from app.engine.types import GenerationStats
from app.ui.plain_text import make_plain


class StatusLine(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.speed_label = QLabel(self)
        self.ttft_label = QLabel(self)
        self.tokens_label = QLabel(self)
        self.context_bar = QProgressBar(self)
        self.context_bar.setFixedWidth(280)  # room for "(16 image)"
        self.context_bar.setFormat("context %v / %m tokens")
        self.context_bar.setToolTip("Tokens in the context window / its size")
        self.notice_label = QLabel(self)
        self.notice_label.setWordWrap(True)
        # Notices quote model names and engine errors: never guessed to be HTML.
        make_plain(self.speed_label, self.ttft_label, self.tokens_label, self.notice_label)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.speed_label)
        layout.addWidget(self.ttft_label)
        layout.addWidget(self.tokens_label)
        layout.addWidget(self.context_bar)
        layout.addWidget(self.notice_label, 1)
        self.set_context(0, 0)

    def set_stats(self, stats: GenerationStats) -> None:
        self.speed_label.setText(f"{stats.tokens_per_second:.1f} tok/s")
        self.ttft_label.setText(f"TTFT {stats.time_to_first_token:.2f} s")
        self.tokens_label.setText(f"{stats.generated_tokens} tokens")
        if stats.n_ctx:
            self.set_context(stats.context_used, stats.n_ctx, stats.image_tokens)

    def set_context(self, used: int, n_ctx: int, image_tokens: int | None = None) -> None:
        """``image_tokens``: how many of ``used`` are images' (None: as last shown, 0 for an
        empty context)."""
        if image_tokens is None and used == 0:
            image_tokens = 0
        if image_tokens is not None:
            images = f" ({image_tokens} image)" if image_tokens else ""
            self.context_bar.setFormat(f"context %v / %m tokens{images}")
        self.context_bar.setRange(0, max(1, n_ctx))
        self.context_bar.setValue(min(used, max(1, n_ctx)))
        self.context_bar.setVisible(n_ctx > 0)

    def show_notice(self, text: str) -> None:
        self.notice_label.setText(text)

    def clear(self) -> None:
        for label in (self.speed_label, self.ttft_label, self.tokens_label, self.notice_label):
            label.clear()
