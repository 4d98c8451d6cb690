"""A small line chart of the last N readings, drawn with QPainter (PySide6-Essentials has no
QtCharts).

Readings arrive from the Hardware page's sampler about once a second; the chart keeps a fixed
window of them, so memory stays constant however long the window stays open.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

_PAD = 6
_TITLE_H = 18


class Sparkline(QWidget):
    """Title and latest value on top, the last ``capacity`` readings as a filled line below."""

    def __init__(
        self,
        title: str,
        maximum: float,
        fmt: Callable[[float], str] = lambda v: f"{v:.0f}",
        capacity: int = 120,
        color: str = "#3d6fb6",
        span: str = "2 min ago",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self._span = span  # what the left edge means, e.g. "2 min ago" at one sample a second
        self.maximum = max(float(maximum), 1e-9)
        self._fmt = fmt
        self._color = QColor(color)
        self._values: deque[float] = deque(maxlen=capacity)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(140)

    def sizeHint(self) -> QSize:
        return QSize(320, 140)

    @property
    def capacity(self) -> int:
        return self._values.maxlen or 0

    @property
    def point_count(self) -> int:
        return len(self._values)

    @property
    def latest(self) -> float | None:
        return self._values[-1] if self._values else None

    def add(self, value: float) -> None:
        self._values.append(float(value))
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        text_color = palette.color(palette.ColorRole.WindowText)
        p.setPen(text_color)
        title_rect = QRectF(_PAD, 0, self.width() - 2 * _PAD, _TITLE_H)
        p.drawText(title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self.title)
        latest = "—" if self.latest is None else self._fmt(self.latest)
        p.drawText(title_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                   latest)

        plot = QRectF(_PAD, _TITLE_H + 2, self.width() - 2 * _PAD,
                      self.height() - _TITLE_H - 2 - _PAD)
        p.setPen(QPen(QColor(128, 128, 128, 90), 1))
        p.setBrush(QColor(128, 128, 128, 18))
        p.drawRect(plot)
        for fraction in (0.25, 0.5, 0.75):  # quarter lines make the scale readable at a glance
            y = plot.top() + plot.height() * fraction
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        # The scale's top, so a low flat line reads as "little of a lot", not as "nothing".
        small = p.font()
        small.setPointSizeF(small.pointSizeF() * 0.85)
        p.setFont(small)
        p.setPen(QColor(128, 128, 128))
        p.drawText(plot.adjusted(4, 2, -4, -2),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self._fmt(self.maximum))
        p.drawText(plot.adjusted(4, 2, -4, -2),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                   self._span)
        p.drawText(plot.adjusted(4, 2, -4, -2),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom, "now")
        if len(self._values) < 2:
            p.end()
            return
        # The newest reading sits at the right edge; a full window spans the whole width.
        step = plot.width() / max(self.capacity - 1, 1)
        x0 = plot.right() - step * (len(self._values) - 1)
        points = [
            QPointF(x0 + i * step,
                    plot.bottom() - plot.height() * min(max(v / self.maximum, 0.0), 1.0))
            for i, v in enumerate(self._values)
        ]
        line = QPainterPath(points[0])
        for point in points[1:]:
            line.lineTo(point)
        area = QPainterPath(line)
        area.lineTo(points[-1].x(), plot.bottom())
        area.lineTo(points[0].x(), plot.bottom())
        area.closeSubpath()
        fill = QColor(self._color)
        fill.setAlpha(50)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(fill)
        p.drawPath(area)
        p.setPen(QPen(self._color, 1.8))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(line)
        p.end()
