"""What every page shares: its title, a scroll area for pages taller than small windows, and the
colour of an error."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

ERROR_COLOR = "#b3261e"
ERROR_STYLE = f"color: {ERROR_COLOR};"


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
