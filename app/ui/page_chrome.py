"""What every page shares: its title, and a scroll area for pages taller than small windows."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget


def page_title(text: str) -> QLabel:
    title = QLabel(text)
    title.setStyleSheet("font-size: 18px; font-weight: 600;")
    return title


def scroll_page(page: QWidget, content: QWidget) -> None:
    """Show ``content`` in ``page`` inside a borderless, resizing scroll area."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(content)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
