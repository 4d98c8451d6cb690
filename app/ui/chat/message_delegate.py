"""Paints one chat message: role header, status badge, collapsible thinking, Markdown body, stats.

Each row's Markdown is rendered once into a QTextDocument and cached by message id with a
signature (content length, status, …), together with the row's height: while a reply streams
only the last row's signature changes, so only that row is converted and laid out again, and the
relayout of every other row that Qt does on each tick costs a dictionary lookup. The cache always
holds every exposed row (it grows with the model's window), so paging far back never makes a
tick re-render rows that were evicted. A row rendered for the first time (opening a chat, paging)
shows its code uncoloured, at the same height, and LateHighlighter colours it moments later.

A streaming reply that is costly to convert (a long answer with highlighted code) is rendered
again at most every STREAM_RENDER_INTERVAL_S. In between, the previous rendering stays on screen
and the row is neither laid out nor repainted: on a two-core machine every millisecond the GUI
spends is taken from the decode threads. A timer catches up if no further text arrives. Its final
state is always rendered at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QMouseEvent,
    QPainter,
    QPalette,
    QTextDocument,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.engine.types import GenerationStats
from app.models.records import MessageRecord
from app.ui.chat.bubble_paint import bubble_color, draw_document
from app.ui.chat.code_copy import CopyButton, copy_buttons, paint_copy_buttons
from app.ui.chat.late_highlight import LateHighlighter
from app.ui.chat.message_images import Thumbnails
from app.ui.chat.message_model import PrettyJsonRole, RecordRole, StatsRole, VersionRole
from app.ui.chat.message_render import MessageRenderer, Rendered
from app.ui.chat.text_selection import BODY, THINKING, TextSelection, hit_test
from app.ui.chat.version_switch import VersionSwitch, paint_version_switch, version_switch
from app.ui.link_policy import open_link
from app.ui.markdown_html import CITE_SCHEME

MARGIN = 6  # between bubbles
PADDING = 10  # inside a bubble
SPACING = 4  # between the parts of a bubble
CACHE_SIZE = 400  # at least this many rows stay rendered; never fewer than the exposed rows
CACHE_MARGIN = 40  # beyond the exposed rows, e.g. for the rows of the previous window
STREAM_RENDER_INTERVAL_S = 0.25  # a costly streaming reply is converted at most this often
CHEAP_RENDER_S = 0.004  # a streaming reply that renders faster than this renders every tick

_Index = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class _Geometry:
    bubble: QRect
    header: QRect
    thinking_header: QRect | None
    thinking_at: QPoint | None
    body_at: QPoint
    height: int
    images: tuple[QRect, ...] = ()  # the message's thumbnails


class MessageDelegate(QStyledItemDelegate):
    versionStepRequested = Signal(int, int)  # message id, -1 (previous) or +1 (next version)
    citationRequested = Signal(int, int)  # message id, citation number (a cite:n anchor)
    imageRequested = Signal(object, str)  # Path of an image file, its name: a thumbnail click

    def __init__(self, view: QWidget, parent: QObject | None = None) -> None:
        super().__init__(parent or view)
        self._view = view
        self.renderer = MessageRenderer(view)
        self._cache: OrderedDict[int, Rendered] = OrderedDict()
        self._expanded: set[int] = set()  # message ids whose thinking block is open
        self.images_folder: Path | None = None  # where messages' image files are (the Store's)
        self.thumbnails = Thumbnails(parent=self)
        self.thumbnails.ready.connect(lambda: self._view.viewport().update())
        self._deferred: QPersistentModelIndex | None = None  # a streaming row shown stale
        self.selection: TextSelection | None = None  # text selected in one message (the view's)
        self.suppress_click = False  # the view's release ended a text drag: no link, no toggle
        self._catch_up = QTimer(self)
        self._catch_up.setSingleShot(True)
        self._catch_up.timeout.connect(self._on_catch_up)
        self._late = LateHighlighter(
            self._colour, lambda index: self.sizeHintChanged.emit(QModelIndex(index)), self)

    # -- public --------------------------------------------------------------------------------
    def document_for(self, index: _Index) -> QTextDocument:
        """The laid-out body of a row (answer, stats or failure reason) as the user sees it."""
        return self._rendered(index, self._content_width()).body

    def thinking_for(self, index: _Index) -> QTextDocument | None:
        return self._rendered(index, self._content_width()).thinking

    def header_text(self, index: _Index) -> str:
        rendered = self._rendered(index, self._content_width())
        return f"{rendered.title} · {rendered.badge}" if rendered.badge else rendered.title

    def thinking_header_rect(self, option_rect: QRect, index: _Index) -> QRect | None:
        """Where the clickable "Thinking" line of that row is, in viewport coordinates."""
        return self._layout(option_rect, index)[1].thinking_header

    def version_switch_at(self, option_rect: QRect, index: _Index) -> VersionSwitch | None:
        """The "‹ n/m ›" switch of that row, in viewport coordinates (None: one version)."""
        version = index.data(VersionRole)
        if version is None:
            return None
        header = self._layout(option_rect, index)[1].header
        return version_switch(header, self._view.font(), *version)

    def code_buttons(self, option_rect: QRect, index: _Index) -> list[CopyButton]:
        """The Copy buttons of that row's fenced code blocks, in viewport coordinates."""
        rendered, geometry = self._layout(option_rect, index)
        return copy_buttons(rendered.body, rendered.code_blocks, geometry.body_at,
                            self._view.font())

    def document_at(self, option_rect: QRect, index: _Index, part: str = BODY) -> QPoint | None:
        """Where that row's answer (BODY) or open thinking block is drawn (viewport coordinates)."""
        geometry = self._layout(option_rect, index)[1]
        return geometry.body_at if part == BODY else geometry.thinking_at

    def text_hit(self, option_rect: QRect, index: _Index, point: QPoint,
                 part: str | None = None) -> tuple[str, int] | None:
        """(BODY or THINKING, character position) of the text under ``point``; with ``part``,
        the nearest position in that document wherever the point is (a drag past its end)."""
        rendered, geometry = self._layout(option_rect, index)
        return hit_test(((BODY, rendered.body, geometry.body_at),
                         (THINKING, rendered.thinking, geometry.thinking_at)), point, part)

    def toggle_thinking(self, index: _Index) -> None:
        record: MessageRecord = index.data(RecordRole)
        self._expanded ^= {record.id}
        self.sizeHintChanged.emit(QModelIndex(index))

    def restyle(self) -> None:
        """Render every row again for the view's palette (light ↔ dark code colours)."""
        self.renderer = MessageRenderer(self._view)
        self.clear()

    def clear(self) -> None:
        self._cache.clear()
        self._late.clear()
        self._catch_up.stop()
        self._deferred = None

    # -- QStyledItemDelegate -------------------------------------------------------------------
    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        width = self._view.viewport().width()
        rendered = self._rendered(index, max(80, width - 2 * (MARGIN + PADDING)))
        if rendered.height is None or rendered.height[0] != width:
            rendered.height = (width, self._layout(QRect(0, 0, width, 0), index)[1].height)
        return QSize(width, rendered.height[1])

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        record: MessageRecord = index.data(RecordRole)
        rendered, geometry = self._layout(option.rect, index)
        visible = self._view.viewport().rect()
        palette = option.palette
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        border = palette.color(QPalette.ColorRole.Highlight) if selected else palette.color(
            QPalette.ColorRole.Mid
        )
        painter.setPen(border)
        painter.setBrush(bubble_color(record.role, palette))
        painter.drawRoundedRect(geometry.bubble, 8, 8)

        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(geometry.header, Qt.AlignmentFlag.AlignLeft, rendered.title)
        self.thumbnails.paint(painter, record.images_json, self.images_folder, geometry.images,
                              palette.color(QPalette.ColorRole.PlaceholderText))
        if rendered.badge:
            title_width = QFontMetrics(bold).horizontalAdvance(rendered.title + "  ")
            painter.setFont(option.font)
            painter.setPen(QColor("#b00020") if record.status == "failed" else QColor("#8a6d00"))
            painter.drawText(
                geometry.header.adjusted(title_width, 0, 0, 0),
                Qt.AlignmentFlag.AlignLeft,
                f"[{rendered.badge}]",
            )
        switch = self.version_switch_at(option.rect, index)
        if switch is not None:
            paint_version_switch(painter, switch, option.font, palette)
        if geometry.thinking_header is not None and rendered.thinking_label:
            painter.setFont(option.font)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(geometry.thinking_header, Qt.AlignmentFlag.AlignVCenter,
                             rendered.thinking_label)
        chosen = self.selection if self.selection and self.selection.message_id == record.id \
            else None
        if geometry.thinking_at is not None and rendered.thinking is not None:
            draw_document(painter, rendered.thinking, geometry.thinking_at, visible, palette,
                          QPalette.ColorRole.PlaceholderText,
                          chosen if chosen and chosen.part == THINKING else None)
        draw_document(painter, rendered.body, geometry.body_at, visible, palette,
                      QPalette.ColorRole.Text, chosen if chosen and chosen.part == BODY else None)
        if rendered.code_blocks:
            paint_copy_buttons(painter, self.code_buttons(option.rect, index), option.font,
                               palette)
        painter.restore()

    def editorEvent(
        self,
        event: QEvent,
        model: QAbstractItemModel,
        option: QStyleOptionViewItem,
        index: _Index,
    ) -> bool:
        if (
            not self.suppress_click
            and event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and event.button() == Qt.MouseButton.LeftButton
        ):
            point = event.position().toPoint()
            geometry = self._layout(option.rect, index)[1]
            image = self.thumbnails.hit(index.data(RecordRole).images_json, self.images_folder,
                                        geometry.images, point)
            if image is not None:
                self.imageRequested.emit(*image)
                return True
            header = geometry.thinking_header
            if header is not None and header.contains(point):
                self.toggle_thinking(index)
                return True
            switch = self.version_switch_at(option.rect, index)
            if switch is not None and switch.step_at(point):
                self.versionStepRequested.emit(index.data(RecordRole).id, switch.step_at(point))
                return True
            for button in self.code_buttons(option.rect, index):
                if button.rect.contains(point):
                    QGuiApplication.clipboard().setText(button.code)
                    return True
            anchor = self.anchor_at(option.rect, index, point)
            if anchor.startswith(CITE_SCHEME):
                number = anchor[len(CITE_SCHEME):]
                if number.isdecimal() and len(number) <= 4:
                    self.citationRequested.emit(index.data(RecordRole).id, int(number))
                return True
            if anchor:
                open_link(anchor, self._view)
                return True
        return super().editorEvent(event, model, option, index)

    def anchor_at(self, option_rect: QRect, index: _Index, point: QPoint) -> str:
        """The link address under ``point`` (viewport coordinates) in that row, or ""."""
        rendered, geometry = self._layout(option_rect, index)
        for document, at in ((rendered.body, geometry.body_at),
                             (rendered.thinking, geometry.thinking_at)):
            if document is not None and at is not None:
                anchor = document.documentLayout().anchorAt((point - at).toPointF())
                if anchor:
                    return anchor
        return ""

    # -- rendering -----------------------------------------------------------------------------
    def _content_width(self) -> int:
        return max(80, self._view.viewport().width() - 2 * (MARGIN + PADDING))

    def _layout(self, rect: QRect, index: _Index) -> tuple[Rendered, _Geometry]:
        width = max(80, rect.width() - 2 * (MARGIN + PADDING))
        rendered = self._rendered(index, width)
        line = QFontMetrics(self._view.font()).height()
        left = rect.left() + MARGIN + PADDING
        y = rect.top() + MARGIN + PADDING
        header = QRect(left, y, width, line)
        y += line + SPACING
        images, used = self.thumbnails.layout(index.data(RecordRole).images_json,
                                              self.images_folder, left, y, width)
        y += used + SPACING if images else 0
        thinking_header = thinking_at = None
        if rendered.thinking_label is not None:
            thinking_header = QRect(left, y, width, line + SPACING)
            y += line + 2 * SPACING
            if rendered.thinking is not None:
                thinking_at = QPoint(left, y)
                y += int(rendered.thinking.size().height()) + SPACING
        body_at = QPoint(left, y)
        if not rendered.body.isEmpty():  # a tool block has only its summary line
            y += int(rendered.body.size().height())
        y += PADDING
        bubble = QRect(rect.left() + MARGIN, rect.top() + MARGIN, rect.width() - 2 * MARGIN,
                       y - rect.top() - MARGIN)
        height = y - rect.top() + MARGIN
        return rendered, _Geometry(bubble, header, thinking_header, thinking_at, body_at, height,
                                   images)

    def laid_out_height(self, index: _Index) -> int | None:
        """The row's height as last measured at the view's width (None: not measured)."""
        rendered = self._cache.get(index.data(RecordRole).id)
        width = self._view.viewport().width()
        if rendered is None or rendered.height is None or rendered.height[0] != width:
            return None
        return rendered.height[1]

    def shows_stale(self, index: _Index) -> bool:
        """Whether that row's new data waits for its next due rendering (a streaming reply).

        The view then skips the relayout and repaint a data change would cost: nothing on
        screen would differ, and on a two-core machine that GUI work slows the decode threads.
        The catch-up timer relays the row out when its rendering is due.
        """
        record: MessageRecord = index.data(RecordRole)
        rendered = self._cache.get(record.id)
        return (rendered is not None and rendered.signature != self._signature(record, index)
                and self._defer(rendered, record, index))

    def _signature(self, record: MessageRecord, index: _Index) -> tuple[object, ...]:
        stats: GenerationStats | None = index.data(StatsRole)
        return (len(record.content), record.status, record.error, stats is not None,
                record.id in self._expanded, bool(index.data(PrettyJsonRole)),
                record.tool_json is not None, len(record.sources_json or ""))

    def _rendered(self, index: _Index, width: int) -> Rendered:
        record: MessageRecord = index.data(RecordRole)
        stats: GenerationStats | None = index.data(StatsRole)
        expanded = record.id in self._expanded
        signature = self._signature(record, index)
        rendered = self._cache.get(record.id)
        if rendered is None or (
            rendered.signature != signature and not self._defer(rendered, record, index)
        ):
            # A row seen for the first time (opening a chat, paging) shows its code uncoloured
            # at once; a streaming reply is coloured as it grows, so it never flickers.
            highlight = rendered is not None or record.status == "streaming"
            rendered = self._store(record, self.renderer.render(
                record, stats, expanded, signature, highlight,
                bool(index.data(PrettyJsonRole))))
            if rendered.uncoloured:
                self._late.add(record.id, QPersistentModelIndex(index))
        else:
            self._cache.move_to_end(record.id)
        for document in (rendered.thinking, rendered.body):
            if document is not None and document.textWidth() != width:
                document.setTextWidth(width)
        return rendered

    def _store(self, record: MessageRecord, rendered: Rendered) -> Rendered:
        self._cache[record.id] = rendered
        model = self._view.model() if hasattr(self._view, "model") else None
        limit = max(CACHE_SIZE, (model.rowCount() if model else 0) + CACHE_MARGIN)
        while len(self._cache) > limit:
            self._cache.popitem(last=False)
        return rendered

    def _colour(self, index: QPersistentModelIndex) -> bool:
        """Render a row shown with uncoloured code again, coloured (LateHighlighter's work)."""
        record: MessageRecord = index.data(RecordRole)
        rendered = self._cache.get(record.id)
        if rendered is None or not rendered.uncoloured:
            return False
        self._store(record, self.renderer.render(
            record, index.data(StatsRole), record.id in self._expanded, rendered.signature,
            True, bool(index.data(PrettyJsonRole))))  # True: highlight
        return True

    def _defer(self, rendered: Rendered, record: MessageRecord, index: _Index) -> bool:
        """Whether to keep showing a streaming row's previous rendering for now."""
        if record.status != "streaming" or rendered.signature[1] != "streaming":
            return False  # the final state (and anything but streaming) renders at once
        if not rendered.has_text or rendered.cost < CHEAP_RENDER_S:
            return False
        wait = STREAM_RENDER_INTERVAL_S - (time.monotonic() - rendered.rendered_at)
        if wait <= 0:
            return False
        self._deferred = QPersistentModelIndex(index)
        if not self._catch_up.isActive():
            self._catch_up.start(max(1, int(wait * 1000) + 1))
        return True

    def _on_catch_up(self) -> None:
        index, self._deferred = self._deferred, None
        if index is not None and index.isValid():
            self.sizeHintChanged.emit(QModelIndex(index))  # relays out and repaints that row
