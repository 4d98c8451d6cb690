"""Text from outside shown as text: labels, tooltips and message boxes that never guess HTML.

QLabel, QToolTip and QMessageBox guess: text that looks like HTML is rendered as HTML, and an
``<img src="/dev/zero">`` in a model's name is then read from disk. Labels that may show such
text are made `Qt.PlainText`; every tooltip in the application is shown escaped by
`SafeToolTips`; message box texts go through `escaped_rich`, which renders exactly as typed.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QEvent, QModelIndex, QObject, QRect, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QLabel,
    QTabBar,
    QToolTip,
    QWidget,
)

TOOLTIP_LIMIT = 2000  # characters shown in one tooltip
MESSAGE_LIMIT = 20_000  # characters shown in one message box


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows ``text`` (and everything set later) literally."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setText(text)
    return label


def make_plain(*labels: QLabel) -> None:
    """Make existing labels (e.g. superqt's eliding ones) show their text literally."""
    for label in labels:
        label.setTextFormat(Qt.TextFormat.PlainText)


def escaped_rich(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` as HTML that shows exactly ``text`` (line breaks kept), for widgets that guess
    the format and have no plain-text switch (static QMessageBox calls, tooltips)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "<qt>" + escape(text, quote=False).replace("\n", "<br>") + "</qt>"


def _tooltip_text(widget: QWidget, event: QHelpEvent) -> tuple[str, QRect]:
    """The tooltip Qt would show for ``widget`` at the event's position, and its area."""
    parent = widget.parentWidget()
    if isinstance(widget, QHeaderView):
        section = widget.logicalIndexAt(event.pos())
        model = widget.model()
        if section < 0 or model is None:
            return "", QRect()
        data = model.headerData(section, widget.orientation(), Qt.ItemDataRole.ToolTipRole)
        return (data if isinstance(data, str) else ""), QRect()
    if isinstance(parent, QAbstractItemView) and widget is parent.viewport():
        index: QModelIndex = parent.indexAt(event.pos())
        data = index.data(Qt.ItemDataRole.ToolTipRole) if index.isValid() else None
        return (data if isinstance(data, str) else ""), parent.visualRect(index)
    if isinstance(widget, QTabBar):
        tab = widget.tabAt(event.pos())
        return (widget.tabToolTip(tab) if tab >= 0 else ""), widget.tabRect(tab)
    return widget.toolTip(), QRect()


class SafeToolTips(QObject):
    """Application-wide: shows every tooltip escaped, so none is ever rendered as HTML."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's API
        if event.type() != QEvent.Type.ToolTip or not isinstance(watched, QWidget):
            return False
        if not isinstance(event, QHelpEvent):
            return False
        text, area = _tooltip_text(watched, event)
        if not text:
            # Nothing here: Qt hides any tooltip and passes the event on to the parent,
            # which comes through this filter again.
            return False
        QToolTip.showText(event.globalPos(), escaped_rich(text, TOOLTIP_LIMIT), watched, area)
        return True


def install_safe_tooltips(app: QApplication | None = None) -> SafeToolTips | None:
    """Install the tooltip filter on the application, once."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    if app is None:
        return None
    existing = app.findChild(SafeToolTips)
    if existing is not None:
        return existing
    tooltips = SafeToolTips(app)
    app.installEventFilter(tooltips)
    return tooltips
