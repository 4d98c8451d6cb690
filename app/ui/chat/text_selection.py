"""Selecting part of a message with the mouse or the keyboard, and copying it as plain text.

The transcript paints every message from a cached document (MessageDelegate); there is no
widget per message to select in, and adding one would cost the long-chat paint speed. So the
view keeps one selection (a message, which of its documents, a QTextCursor's anchor and
position as numbers) and the delegate paints it through PaintContext.selections in that row
only. Painting every other row costs one comparison more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)

from app.ui.chat.message_model import RecordRole

BODY, THINKING = "body", "thinking"  # which document of a message holds the selection

_MOVES = {
    Qt.Key.Key_Left: QTextCursor.MoveOperation.Left,
    Qt.Key.Key_Right: QTextCursor.MoveOperation.Right,
    Qt.Key.Key_Up: QTextCursor.MoveOperation.Up,
    Qt.Key.Key_Down: QTextCursor.MoveOperation.Down,
    Qt.Key.Key_Home: QTextCursor.MoveOperation.StartOfLine,
    Qt.Key.Key_End: QTextCursor.MoveOperation.EndOfLine,
}
_WORD_MOVES = {
    Qt.Key.Key_Left: QTextCursor.MoveOperation.PreviousWord,
    Qt.Key.Key_Right: QTextCursor.MoveOperation.NextWord,
    Qt.Key.Key_Home: QTextCursor.MoveOperation.Start,
    Qt.Key.Key_End: QTextCursor.MoveOperation.End,
}


@dataclass
class TextSelection:
    message_id: int
    part: str  # BODY or THINKING
    anchor: int
    position: int

    def is_empty(self) -> bool:
        return self.anchor == self.position


def cursor_for(document: QTextDocument, selection: TextSelection) -> QTextCursor:
    """The selection as a cursor in ``document`` (clamped: a streaming reply was re-rendered)."""
    last = max(0, document.characterCount() - 1)
    cursor = QTextCursor(document)
    cursor.setPosition(min(selection.anchor, last))
    cursor.setPosition(min(selection.position, last), QTextCursor.MoveMode.KeepAnchor)
    return cursor


def plain_text(cursor: QTextCursor) -> str:
    """The selected text as a user would type it: newlines, plain spaces, no zero-width breaks
    (the renderer puts those in long unbroken runs)."""
    text = cursor.selection().toPlainText()
    for special, plain in (("\u2029", "\n"), ("\u2028", "\n"), ("\u00a0", " "), ("\u200b", "")):
        text = text.replace(special, plain)
    return text


def highlight(context: QAbstractTextDocumentLayout.PaintContext, document: QTextDocument,
              selection: TextSelection, palette: QPalette) -> None:
    """Make ``context`` paint ``selection`` in the palette's highlight colours."""
    if selection.is_empty():
        return
    chosen = QAbstractTextDocumentLayout.Selection()
    chosen.cursor = cursor_for(document, selection)
    look = QTextCharFormat()
    look.setBackground(palette.color(QPalette.ColorRole.Highlight))
    look.setForeground(palette.color(QPalette.ColorRole.HighlightedText))
    chosen.format = look
    context.selections = [chosen]


def hit_test(parts: Iterable[tuple[str, QTextDocument | None, QPoint | None]], point: QPoint,
             part: str | None) -> tuple[str, int] | None:
    """(part, character position) of the text under ``point`` among ``parts`` (name, document,
    where it is drawn); with ``part``, the nearest position in that document wherever the
    point is (a drag past its end)."""
    for name, document, at in parts:
        if document is None or at is None or part not in (None, name):
            continue
        local = (point - at).toPointF()
        inside = QRectF(QPointF(0, 0), document.size()).contains(local)
        if part is None and (not inside or document.isEmpty()):
            continue
        if local.y() < 0:
            return name, 0
        if local.y() >= document.size().height():
            return name, max(0, document.characterCount() - 1)
        return name, document.documentLayout().hitTest(local, Qt.HitTestAccuracy.FuzzyHit)
    return None


class TextSelector(QObject):
    """The view's mouse and key events → the delegate's selection (``delegate.selection``).

    The view passes events here first; a True answer means the event was used for selecting
    and the view should not act on it as well (a drag that ends on a link does not open it).
    """

    def __init__(self, view: object, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._view = view  # the MessageView: indexAt, visualRect, delegate, viewport
        self._row: QPersistentModelIndex | None = None  # the selection's row
        self._dragging = False
        self._swallow_release = False

    @property
    def selection(self) -> TextSelection | None:
        return self._view.delegate.selection

    def clear(self) -> None:
        self._set(None, None)

    def selected_text(self) -> str:
        """The selected text ("" when nothing is selected)."""
        selection, document = self.selection, self._document()
        if selection is None or document is None or selection.is_empty():
            return ""
        return plain_text(cursor_for(document, selection))

    def select_all(self, index: QPersistentModelIndex | None = None) -> bool:
        """Select the whole of the selection's document, else of that row's answer."""
        selection = self.selection
        if selection is None and index is not None and index.isValid():
            record = index.data(RecordRole)
            if record is None:
                return False
            self._set(TextSelection(record.id, BODY, 0, 0), QPersistentModelIndex(index))
            selection = self.selection
        document = self._document()
        if selection is None or document is None:
            return False
        selection.anchor, selection.position = 0, max(0, document.characterCount() - 1)
        self._repaint()
        return True

    # -- events --------------------------------------------------------------------------------
    def mouse_press(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point = event.position().toPoint()
        self._swallow_release = False
        selection = self.selection
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and selection is not None:
            hit = self._hit(point, selection.part)
            if hit is not None:
                selection.position = hit[1]
                self._dragging = True
                self._repaint()
                return
        index = self._view.indexAt(point)
        hit = self._hit(point, None, index) if index.isValid() else None
        if hit is None:
            self._set(None, None)
            return
        record = index.data(RecordRole)
        self._set(TextSelection(record.id, hit[0], hit[1], hit[1]), QPersistentModelIndex(index))
        self._dragging = True

    def mouse_move(self, event: QMouseEvent) -> bool:
        if not self._dragging:  # pressed in text, not yet released
            return False
        selection = self.selection
        self._scroll_towards(event.position().toPoint())
        hit = self._hit(event.position().toPoint(), selection.part) if selection else None
        if hit is not None and hit[1] != selection.position:
            selection.position = hit[1]
            self._repaint()
        return True

    def mouse_release(self, event: QMouseEvent) -> bool:
        dragging, self._dragging = self._dragging, False
        if self._swallow_release:
            self._swallow_release = False
            return True
        selection = self.selection
        return dragging and selection is not None and not selection.is_empty()

    def double_click(self, event: QMouseEvent) -> bool:
        """Select the word under the pointer."""
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        self.mouse_press(event)  # where the pointer is, whatever came before
        selection, document = self.selection, self._document()
        if selection is None or document is None:
            return False
        cursor = QTextCursor(document)
        cursor.setPosition(min(selection.position, max(0, document.characterCount() - 1)))
        cursor.select(QTextCursor.SelectionType.WordUnderCursor)
        if not cursor.hasSelection():
            return False
        selection.anchor, selection.position = cursor.anchor(), cursor.position()
        self._dragging = False
        self._swallow_release = True  # the second click's release is not a link click
        self._repaint()
        return True

    def key_press(self, event: QKeyEvent) -> bool:
        """Shift+arrows (Ctrl for words), Shift+Home/End extend; Ctrl+A selects the message."""
        if event.matches(QKeySequence.StandardKey.SelectAll):
            return self.select_all(self._current())
        selection, document = self.selection, self._document()
        shift = event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if selection is None or document is None or not shift or event.key() not in _MOVES:
            return False
        word = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        move = _WORD_MOVES.get(event.key()) if word else None
        cursor = cursor_for(document, selection)
        cursor.movePosition(move or _MOVES[event.key()], QTextCursor.MoveMode.KeepAnchor)
        selection.position = cursor.position()
        self._repaint()
        return True

    # -- helpers -------------------------------------------------------------------------------
    def _current(self) -> QPersistentModelIndex | None:
        current = self._view.currentIndex()
        return QPersistentModelIndex(current) if current.isValid() else None

    def _hit(self, point: QPoint, part: str | None,
             index: QModelIndex | None = None) -> tuple[str, int] | None:
        """(part, character position) under ``point`` in that row (default: the selection's);
        with ``part``, the nearest position in that document, wherever the pointer is."""
        if index is None:
            if self._row is None or not self._row.isValid():
                return None
            index = QModelIndex(self._row)
        return self._view.delegate.text_hit(self._view.visualRect(index), index, point, part)

    def _scroll_towards(self, point: QPoint) -> None:
        """A drag above or below the transcript scrolls it, as in any text view."""
        height = self._view.viewport().height()
        beyond = point.y() if point.y() < 0 else max(0, point.y() - height)
        if beyond:
            bar = self._view.verticalScrollBar()
            bar.setValue(bar.value() + beyond)

    def _document(self) -> QTextDocument | None:
        selection = self.selection
        if selection is None or self._row is None or not self._row.isValid():
            return None
        delegate = self._view.delegate
        if selection.part == THINKING:
            return delegate.thinking_for(self._row)
        return delegate.document_for(self._row)

    def _set(self, selection: TextSelection | None,
             row: QPersistentModelIndex | None) -> None:
        had = self.selection is not None
        self._view.delegate.selection = selection
        self._row = row
        if had or selection is not None:
            self._view.viewport().update()

    def _repaint(self) -> None:
        self._view.viewport().update()
