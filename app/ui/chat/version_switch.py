"""The "‹ 2/3 ›" switch painted at the right of the header of a message that has versions.

Kept apart from the delegate: the delegate only asks where the switch is, paints it, and turns
a click on an arrow into a step (-1 or +1).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette

ARROW_PADDING = 6  # each side of an arrow: a bigger target than the glyph


@dataclass(frozen=True)
class VersionSwitch:
    previous: QRect  # the "‹" arrow
    label: QRect  # "2/3"
    next: QRect  # the "›" arrow
    number: int  # 1-based
    count: int

    @property
    def text(self) -> str:
        return f"{self.number}/{self.count}"

    def step_at(self, point: QPoint) -> int:
        """-1 or +1 for a point on an arrow that leads somewhere, else 0."""
        if self.previous.contains(point) and self.number > 1:
            return -1
        if self.next.contains(point) and self.number < self.count:
            return 1
        return 0


def version_switch(header: QRect, font: QFont, number: int, count: int) -> VersionSwitch:
    """Where the switch goes, right-aligned in the header line."""
    metrics = QFontMetrics(font)
    arrow = max(metrics.horizontalAdvance("‹"), metrics.horizontalAdvance("›"))
    arrow += 2 * ARROW_PADDING
    label = metrics.horizontalAdvance(f"{count}/{count}") + ARROW_PADDING
    right = header.right() + 1
    nxt = QRect(right - arrow, header.top(), arrow, header.height())
    middle = QRect(nxt.left() - label, header.top(), label, header.height())
    previous = QRect(middle.left() - arrow, header.top(), arrow, header.height())
    return VersionSwitch(previous, middle, nxt, number, count)


def paint_version_switch(
    painter: QPainter, switch: VersionSwitch, font: QFont, palette: QPalette
) -> None:
    painter.setFont(font)
    active = palette.color(QPalette.ColorRole.Link)
    inactive = palette.color(QPalette.ColorRole.PlaceholderText)
    centre = Qt.AlignmentFlag.AlignCenter
    painter.setPen(active if switch.number > 1 else inactive)
    painter.drawText(switch.previous, centre, "‹")
    painter.setPen(palette.color(QPalette.ColorRole.Text))
    painter.drawText(switch.label, centre, switch.text)
    painter.setPen(active if switch.number < switch.count else inactive)
    painter.drawText(switch.next, centre, "›")
