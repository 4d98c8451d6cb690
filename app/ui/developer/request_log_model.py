"""The server's request log as a table, newest first: time, path, model, tokens, tok/s, status.

The log is written on the server's threads; this model copies it on the GUI thread when its
owner's timer calls `refresh` (only while the page is visible), and changes rows only when
there are new entries. It never holds more than ``limit`` rows. Paths and model names come from
outside: a table cell shows its display text literally, never as HTML.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from app.server.request_log import RequestLog, RequestLogEntry

HEADERS = ("Time", "Request", "Model", "Tokens", "tok/s", "Status")
RIGHT_ALIGNED = {3, 4, 5}
DEFAULT_LIMIT = 500
_Index = QModelIndex | QPersistentModelIndex


def _tokens(entry: RequestLogEntry) -> str:
    if entry.prompt_tokens is None and entry.completion_tokens is None:
        return ""
    return f"{entry.prompt_tokens or 0} → {entry.completion_tokens or 0}"


def cell_text(entry: RequestLogEntry, column: int) -> str:
    if column == 0:
        return time.strftime("%H:%M:%S", time.localtime(entry.time))
    if column == 1:
        return f"{entry.method} {entry.path[:200]}"
    if column == 2:
        return (entry.model or "")[:200]
    if column == 3:
        return _tokens(entry)
    if column == 4:
        return f"{entry.tokens_per_second:.1f}" if entry.tokens_per_second else ""
    return str(entry.status)


class RequestLogModel(QAbstractTableModel):
    def __init__(self, log: RequestLog, limit: int = DEFAULT_LIMIT,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self._log = log
        self._limit = limit
        self._rows: list[RequestLogEntry] = []  # newest first

    def refresh(self) -> None:
        entries = self._log.entries()[-self._limit:]
        newest = self._rows[0] if self._rows else None
        seen = next((i for i in range(len(entries) - 1, -1, -1) if entries[i] is newest), None)
        if seen is None:  # first fill, or everything shown has left the log: start over
            if entries or self._rows:
                self.beginResetModel()
                self._rows = list(reversed(entries))
                self.endResetModel()
            return
        new = entries[seen + 1:]
        if not new:
            return
        self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
        self._rows[:0] = reversed(new)
        self.endInsertRows()
        if len(self._rows) > self._limit:
            self.beginRemoveRows(QModelIndex(), self._limit, len(self._rows) - 1)
            del self._rows[self._limit:]
            self.endRemoveRows()

    def entry(self, row: int) -> RequestLogEntry:
        return self._rows[row]

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        entry = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(entry, index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in RIGHT_ALIGNED:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 5 and entry.status >= 400:
            return QColor("#b3261e")
        if role == Qt.ItemDataRole.ToolTipRole and index.column() in (1, 2):
            return cell_text(entry, index.column())  # shown escaped by SafeToolTips
        return None
