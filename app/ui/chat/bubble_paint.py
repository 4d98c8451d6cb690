"""Painting parts of a message bubble: its background colour and a laid-out document."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QRectF
from PySide6.QtGui import QAbstractTextDocumentLayout, QColor, QPainter, QPalette, QTextDocument

from app.ui.chat.text_selection import TextSelection, highlight


def draw_document(
    painter: QPainter,
    document: QTextDocument,
    at: QPoint,
    visible: QRect,
    palette: QPalette,
    color: QPalette.ColorRole,
    selection: TextSelection | None = None,
) -> None:
    painter.save()
    painter.translate(at)
    context = QAbstractTextDocumentLayout.PaintContext()
    # Only the lines inside the viewport: a long reply is far taller than the window.
    context.clip = QRectF(visible.translated(-at))
    context.palette.setColor(QPalette.ColorRole.Text, palette.color(color))
    if selection is not None:
        highlight(context, document, selection, palette)
    document.documentLayout().draw(painter, context)
    painter.restore()


def bubble_color(role: str, palette: QPalette) -> QColor:
    base = palette.color(QPalette.ColorRole.Base)
    if role == "user":
        tint = palette.color(QPalette.ColorRole.Highlight)
        return QColor(
            (base.red() * 7 + tint.red()) // 8,
            (base.green() * 7 + tint.green()) // 8,
            (base.blue() * 7 + tint.blue()) // 8,
        )
    if role == "system":
        return palette.color(QPalette.ColorRole.AlternateBase)
    return base
