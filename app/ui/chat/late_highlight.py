"""Colours the code of rows shown uncoloured, a few at a time, once the chat is on screen.

Lexing code is most of the cost of rendering a reply, and opening a chat lays out every row in
its window at once. So rows are first rendered with their code blocks uncoloured (the same
height), and this queue colours them afterwards, newest first (the view opens at the bottom),
within a small time budget per event-loop turn so the window keeps answering.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QPersistentModelIndex, QTimer

BUDGET_S = 0.012  # colouring work per event-loop turn


class LateHighlighter(QObject):
    def __init__(
        self,
        highlight: Callable[[QPersistentModelIndex], bool],
        relayout: Callable[[QPersistentModelIndex], None],
        parent: QObject | None = None,
    ) -> None:
        """``highlight`` re-renders that row coloured (False: nothing to do any more);
        ``relayout`` repaints the view after a turn's work."""
        super().__init__(parent)
        self._highlight = highlight
        self._relayout = relayout
        self._pending: dict[int, QPersistentModelIndex] = {}  # message id → row, oldest first
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._work)

    def add(self, message_id: int, index: QPersistentModelIndex) -> None:
        self._pending.pop(message_id, None)
        self._pending[message_id] = index
        self._timer.start()

    def clear(self) -> None:
        self._pending.clear()
        self._timer.stop()

    def pending(self) -> int:
        return len(self._pending)

    def _work(self) -> None:
        started = time.monotonic()
        changed = None
        while self._pending and time.monotonic() - started < BUDGET_S:
            _message_id, index = self._pending.popitem()  # newest first
            if index.isValid() and self._highlight(index):
                changed = index
        if changed is not None:
            self._relayout(changed)
        if self._pending:
            self._timer.start()
