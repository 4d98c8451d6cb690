"""A horizontal bar chart painted with QPainter (QtCharts is not part of Hearth's Qt install).

One bar per model, labelled on the left with its value at the bar's end; the source's bar is
drawn in a muted colour so the quantized ones stand out against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

_BAR_HEIGHT = 22  # the least; bars grow to fill the widget, up to _MAX_BAR_HEIGHT
_MAX_BAR_HEIGHT = 40
_GAP = 8
_PAD = 10


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: not measured; drawn as "—" with no bar
    text: str  # the value as shown at the bar's end
    highlight: bool = True  # False for the reference bar (the source)


class BarChart(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bars: list[Bar] = []
        self._caption = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def set_bars(self, bars: list[Bar], caption: str = "") -> None:
        self._bars = list(bars)
        self._caption = caption
        self.updateGeometry()
        self.update()

    def bars(self) -> list[Bar]:
        return list(self._bars)

    def sizeHint(self) -> QSize:
        rows = max(len(self._bars), 1)
        return QSize(420, 2 * _PAD + self._caption_height() + rows * (_BAR_HEIGHT + _GAP))

    def minimumSizeHint(self) -> QSize:
        return QSize(240, self.sizeHint().height())

    def _caption_height(self) -> int:
        return QFontMetrics(self.font()).height() + _GAP if self._caption else 0

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        metrics = QFontMetrics(self.font())
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        top = _PAD
        if self._caption:
            painter.drawText(_PAD, top + metrics.ascent(), self._caption)
            top += self._caption_height()
        if not self._bars:
            painter.end()
            return
        label_w = max(metrics.horizontalAdvance(b.label) for b in self._bars) + _PAD
        value_w = max(metrics.horizontalAdvance(b.text) for b in self._bars) + _PAD
        left = _PAD + label_w
        span = max(self.width() - left - value_w - _PAD, 10)
        peak = max((b.value for b in self._bars if b.value is not None), default=0.0) or 1.0
        accent = palette.color(QPalette.ColorRole.Highlight)
        muted = QColor(accent)
        muted.setAlpha(90)
        room = (self.height() - top - _PAD) // len(self._bars) - _GAP
        bar_h = max(_BAR_HEIGHT, min(_MAX_BAR_HEIGHT, room))
        for i, bar in enumerate(self._bars):
            y = top + i * (bar_h + _GAP)
            text_y = y + (bar_h + metrics.ascent() - metrics.descent()) // 2
            painter.setPen(palette.color(QPalette.ColorRole.WindowText))
            painter.drawText(_PAD, text_y, bar.label)
            width = 0.0
            if bar.value is not None and bar.value > 0:
                width = max(span * bar.value / peak, 2.0)
                painter.fillRect(QRectF(left, y, width, bar_h),
                                 accent if bar.highlight else muted)
            painter.drawText(int(left + width + 6), text_y, bar.text)
        painter.end()

