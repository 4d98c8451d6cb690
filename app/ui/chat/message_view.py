"""The transcript: a list view of message bubbles with Copy / Edit / Regenerate actions, and
the versions of a message (‹ › in its header, "Delete this version" in its menu).
Text inside a message is selected with the mouse or keys (TextSelector) and copied as plain
text; Copy without a selection gives a reply without its reasoning.

It follows the newest text while a reply streams only if the user is already at the bottom,
and pages older messages in when the user scrolls to the top.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QMenu,
    QStyleOptionViewItem,
    QWidget,
)

from app.models.records import MessageRecord
from app.ui.chat.message_delegate import MessageDelegate
from app.ui.chat.message_images import ImageViewer
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.text_selection import TextSelector

BOTTOM_SLACK_PX = 8  # this close to the end still counts as "at the bottom"
CONTEXT_ROWS = 10  # older rows paged in above a search hit


class MessageView(QListView):
    editRequested = Signal(int, str)  # message id, its text
    regenerateRequested = Signal()
    versionRequested = Signal(int, int)  # message id, -1 (previous) or +1 (next version)
    deleteVersionRequested = Signal(int)  # message id
    citationRequested = Signal(int, int)  # message id, citation number: a "[n]" was clicked

    def __init__(self, model: MessageListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._busy = False
        self._follow = True  # keep the newest text in view
        self._resetting = False
        self.setModel(model)
        self.delegate = MessageDelegate(self)
        self.setItemDelegate(self.delegate)
        self.delegate.versionStepRequested.connect(self._on_version_step)
        self.delegate.citationRequested.connect(self.citationRequested)
        self.delegate.imageRequested.connect(self.open_image)
        self.image_viewer: ImageViewer | None = None  # the last one opened
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMouseTracking(True)
        self.verticalScrollBar().setSingleStep(24)
        self.text = TextSelector(self, self)  # text selected inside a message


        self.copy_action = QAction("Copy", self)
        self.copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        self.copy_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.copy_action.setToolTip("Copy the selected text, else the message without its "
                                    "reasoning")
        self.copy_action.triggered.connect(self.copy_selected)
        self.copy_reasoning_action = QAction("Copy with reasoning", self)
        self.copy_reasoning_action.setToolTip("Copy the whole message, its <think> block too")
        self.copy_reasoning_action.triggered.connect(self.copy_with_reasoning)
        self.edit_action = QAction("Edit", self)
        self.edit_action.setToolTip("Edit the selected message and send it again")
        self.edit_action.triggered.connect(self._edit_selected)
        self.regenerate_action = QAction("Regenerate", self)
        self.regenerate_action.setToolTip("Replace the last reply with a new one")
        self.regenerate_action.triggered.connect(self.regenerateRequested)
        # The ‹ › of the bubble header, for the keyboard and the context menu.
        self.previous_version_action = QAction("Previous version", self)
        self.previous_version_action.triggered.connect(lambda: self._step_selected(-1))
        self.next_version_action = QAction("Next version", self)
        self.next_version_action.triggered.connect(lambda: self._step_selected(1))
        self.delete_version_action = QAction("Delete this version", self)
        self.delete_version_action.setToolTip(
            "Delete this version of the message and what followed it; another version stays"
        )
        self.delete_version_action.triggered.connect(self._delete_selected_version)
        self.addAction(self.copy_action)

        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)
        model.modelAboutToBeReset.connect(self._on_about_to_reset)
        model.modelReset.connect(self._on_reset)
        model.rowsInserted.connect(self._update_actions)
        model.rowsRemoved.connect(self._update_actions)
        self.selectionModel().selectionChanged.connect(self._update_actions)
        self._update_actions()

    # -- public --------------------------------------------------------------------------------
    def open_image(self, path: Path, name: str) -> ImageViewer:
        """Show a message's image full size (scaled to fit the screen)."""
        self.image_viewer = ImageViewer(path, name, self)
        self.image_viewer.show()
        return self.image_viewer

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update_actions()

    def selected_record(self) -> MessageRecord | None:
        rows = self.selectionModel().selectedRows()
        return self._model.record(rows[0].row()) if rows else None

    def select_message(self, message_id: int) -> bool:
        """Select and show a message, paging older ones in if needed (search hits)."""
        position = self._model.position_of(message_id)
        if position is None:
            return False
        first = self._model.first_exposed_position()
        if position < first:
            # One insert of the rows needed, plus a few above: a hit shown in row 0 would put
            # the scroll bar at its top, which pages in more.
            self._model.fetch_older(first - max(0, position - CONTEXT_ROWS))
        row = position - self._model.first_exposed_position()
        index = self._model.index(row, 0)
        self._follow = False
        self.setCurrentIndex(index)
        self.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)
        return True

    def follow_latest(self) -> None:
        """Jump to the newest message and keep following it (after the user sends)."""
        self._follow = True
        self.scrollToBottom()

    def is_following(self) -> bool:
        return self._follow

    def copy_selected(self) -> None:
        """The selected text if there is some, else the selected message without reasoning."""
        selected = self.text.selected_text()
        record = self.selected_record()
        if selected:
            QGuiApplication.clipboard().setText(selected)
        elif record is not None:
            QGuiApplication.clipboard().setText(answer_text(record))

    def copy_with_reasoning(self) -> None:
        record = self.selected_record()
        if record is not None:
            QGuiApplication.clipboard().setText(record.text_with_reasoning)

    def context_menu_at(self, pos: QPoint) -> QMenu | None:
        """The menu for the message under `pos` (viewport coordinates), selecting it first."""
        index = self.indexAt(pos)
        if not index.isValid():
            return None
        selection = self.text.selection
        if selection is not None and selection.message_id != self._model.record(index.row()).id:
            self.text.clear()  # Copy acts on the message clicked
        self.setCurrentIndex(index)
        menu = QMenu(self)
        menu.addAction(self.copy_action)
        record = self._model.record(index.row())
        if record.role == "assistant" and answer_text(record) != record.text_with_reasoning:
            menu.addAction(self.copy_reasoning_action)
        for action in (self.edit_action, self.regenerate_action):
            menu.addAction(action)
        if self.delete_version_action.isEnabled():
            menu.addSeparator()
            for action in (self.previous_version_action, self.next_version_action,
                           self.delete_version_action):
                menu.addAction(action)
        return menu

    # -- events --------------------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        dark = self.palette().color(QPalette.ColorRole.Base).lightness() < 128
        if event.type() == QEvent.Type.PaletteChange and dark != self.delegate.renderer.dark:
            self.delegate.restyle()  # Markdown and code colours for the new background
            if self._model.rowCount():
                self.delegate.sizeHintChanged.emit(self._model.index(0, 0))  # relays out all
            self.viewport().update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.text.mouse_press(event)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not self.text.mouse_move(event):  # a text drag does not select other rows
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        # A drag that selected text, or a double-click's release, is not a click on a link.
        self.delegate.suppress_click = self.text.mouse_release(event)
        try:
            super().mouseReleaseEvent(event)
        finally:
            self.delegate.suppress_click = False

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if not self.text.double_click(event):
            super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selected()  # not QAbstractItemView's copy of the row's display text
        elif not self.text.key_press(event):
            super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.context_menu_at(event.pos())
        if menu is not None:
            menu.exec(event.globalPos())
            menu.deleteLater()

    # -- scrolling -----------------------------------------------------------------------------
    def _at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - BOTTOM_SLACK_PX

    def _on_scrolled(self, value: int) -> None:
        if self._resetting:
            return
        self._follow = self._at_bottom()
        bar = self.verticalScrollBar()
        if value == bar.minimum() and bar.maximum() > 0 and self._model.can_fetch_older():
            self._fetch_older_keeping_place()

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._resetting:
            return
        if self._follow:
            self.verticalScrollBar().setValue(maximum)
        elif maximum == 0 and self._model.can_fetch_older():
            # Everything fits on screen, so the user cannot scroll up to ask for more.
            self._model.fetch_older()

    def _fetch_older_keeping_place(self) -> None:
        added = self._model.fetch_older()
        if added:
            # The row that was at the top stays at the top, as in any chat app.
            self.scrollTo(self._model.index(added, 0), QAbstractItemView.ScrollHint.PositionAtTop)

    def _on_about_to_reset(self) -> None:
        self._resetting = True
        self.text.clear()
        self.delegate.clear()

    def _on_reset(self) -> None:
        self._follow = True
        self.scrollToBottom()  # lays out the new rows now, then shows the newest
        self._resetting = False
        self._update_actions()

    def dataChanged(self, top_left: QModelIndex, bottom_right: QModelIndex,
                    roles: Sequence[int] = ()) -> None:
        if top_left == bottom_right:
            if self.delegate.shows_stale(top_left):
                return  # a streaming reply between renderings: the screen would not change
            before = self.delegate.laid_out_height(top_left)
            if before == self.delegate.sizeHint(QStyleOptionViewItem(), top_left).height():
                # Same height (most ticks of a streaming reply): repaint that row only, without
                # the relayout of every exposed row.
                self.viewport().update(self.visualRect(top_left))
                self._update_actions()
                return
        # QListView does not re-measure a row whose data changed (a streaming reply grows). The
        # relayout this asks for repaints the viewport, so the base class's repaint of the row
        # would paint it twice.
        self.delegate.sizeHintChanged.emit(top_left)
        self._update_actions()

    # -- actions -------------------------------------------------------------------------------
    def _edit_selected(self) -> None:
        record = self.selected_record()
        if record is not None and record.role == "user" and not self._busy:
            self.editRequested.emit(record.id, record.content)

    def _on_version_step(self, message_id: int, step: int) -> None:
        if not self._busy:
            self.versionRequested.emit(message_id, step)

    def _step_selected(self, step: int) -> None:
        record = self.selected_record()
        if record is not None and self._model.sibling_version(record.id, step) is not None:
            self._on_version_step(record.id, step)

    def _delete_selected_version(self) -> None:
        record = self.selected_record()
        if record is not None and not self._busy and self._model.version_of(record.id):
            self.deleteVersionRequested.emit(record.id)

    def _update_actions(self) -> None:
        record = self.selected_record()
        last = self._model.last_record()
        self.delete_version_action.setEnabled(
            record is not None and not self._busy and self._model.version_of(record.id) is not None
        )
        for action, step in ((self.previous_version_action, -1), (self.next_version_action, 1)):
            action.setEnabled(record is not None and not self._busy
                              and self._model.sibling_version(record.id, step) is not None)
        self.copy_action.setEnabled(record is not None)
        self.copy_reasoning_action.setEnabled(record is not None)
        self.edit_action.setEnabled(record is not None and record.role == "user" and not self._busy)
        self.regenerate_action.setEnabled(
            last is not None and last.role == "assistant" and not self._busy
        )


def answer_text(record: MessageRecord) -> str:
    """What "Copy" gives for a whole message: a reply without its <think> reasoning."""
    if record.role != "assistant":
        return record.content
    return record.thinking.answer.strip()
