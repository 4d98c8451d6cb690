"""The Copy button of each fenced code block, painted by the delegate at the right of the
block's language label.

The renderer puts a label line before each fenced block, marked by an anchor name
``hearthcode-N`` (a reply cannot make one: its raw HTML is shown as text), and keeps the code
of block N as the model wrote it (tabs and all, without the fences). Here the labels are found
in the laid-out document, once per document, and turned into button rectangles.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette, QTextDocument

from app.ui.markdown_html import CODE_LABEL_ANCHOR, CodeBlock

BUTTON_TEXT = "Copy"
BUTTON_PADDING = 6

# document → [(label block number, code block index)]; found once, freed with the document
_labels: weakref.WeakKeyDictionary[QTextDocument, list[tuple[int, int]]] = (
    weakref.WeakKeyDictionary())


@dataclass(frozen=True)
class CopyButton:
    rect: QRect  # viewport coordinates
    code: str
    language: str


def _label_blocks(document: QTextDocument) -> list[tuple[int, int]]:
    found = _labels.get(document)
    if found is not None:
        return found
    found = []
    block = document.begin()
    while block.isValid():
        fragments = block.begin()
        if not fragments.atEnd():
            for name in fragments.fragment().charFormat().anchorNames():
                number = name.removeprefix(CODE_LABEL_ANCHOR)
                if name.startswith(CODE_LABEL_ANCHOR) and number.isdecimal():
                    found.append((block.blockNumber(), int(number)))
        block = block.next()
    _labels[document] = found
    return found


def copy_buttons(document: QTextDocument, blocks: tuple[CodeBlock, ...], at: QPoint,
                 font: QFont) -> list[CopyButton]:
    """A button per labelled code block of ``document`` drawn at ``at`` (viewport coordinates)."""
    if not blocks:
        return []
    metrics = QFontMetrics(font)
    width = metrics.horizontalAdvance(BUTTON_TEXT) + 2 * BUTTON_PADDING
    right = at.x() + int(document.textWidth())
    layout = document.documentLayout()
    buttons = []
    for number, block_index in _label_blocks(document):
        if block_index >= len(blocks):
            continue
        line = layout.blockBoundingRect(document.findBlockByNumber(number))
        top = at.y() + int(line.top())
        height = max(int(line.height()), metrics.height())
        block = blocks[block_index]
        buttons.append(CopyButton(QRect(right - width, top, width, height), block.code,
                                  block.language))
    return buttons


def paint_copy_buttons(painter: QPainter, buttons: list[CopyButton], font: QFont,
                       palette: QPalette) -> None:
    painter.setFont(font)
    for button in buttons:
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.Button))
        painter.drawRoundedRect(button.rect.adjusted(0, 1, 0, -1), 4, 4)
        painter.setPen(palette.color(QPalette.ColorRole.ButtonText))
        painter.drawText(button.rect, Qt.AlignmentFlag.AlignCenter, BUTTON_TEXT)
