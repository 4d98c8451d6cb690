"""The server's request log as a table, newest first: time, path, model, tokens, tok/s, status.

The log is written on the server's threads; this model copies it on the GUI thread when its
owner's timer calls `refresh` (only while the page is visible), and changes rows only when
there are new entries. It never holds more than ``limit`` rows. Paths and model names come from
outside: a table cell shows its display text literally, never as HTML.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from app.server.request_log import RequestLog, RequestLogEntry
from app.ui.column_table import Column, ColumnTableModel, Index
from app.ui.page_chrome import ERROR_COLOR

DEFAULT_LIMIT = 500
STATUS = 5


def _tokens(entry: RequestLogEntry) -> str:
    if entry.prompt_tokens is None and entry.completion_tokens is None:
        return ""
    return f"{entry.prompt_tokens or 0} → {entry.completion_tokens or 0}"


COLUMNS = (
    Column("Time", lambda e: time.strftime("%H:%M:%S", time.localtime(e.time))),
    Column("Request", lambda e: f"{e.method} {e.path[:200]}"),
    Column("Model", lambda e: (e.model or "")[:200]),
    Column("Tokens", _tokens, right=True),
    Column("tok/s", lambda e: f"{e.tokens_per_second:.1f}" if e.tokens_per_second else "",
           right=True),
    Column("Status", lambda e: str(e.status), right=True),
)


def _tooltip(entry: RequestLogEntry) -> str:
    return f"{entry.method} {entry.path[:200]}\n{(entry.model or '')[:200]}"  # escaped on show


class RequestLogModel(ColumnTableModel):
    def __init__(self, log: RequestLog, limit: int = DEFAULT_LIMIT,
                 parent: Any = None) -> None:
        super().__init__(COLUMNS, _tooltip, parent)
        self._log = log
        self._limit = limit

    def refresh(self) -> None:
        rows = self._records  # newest first
        entries = self._log.entries()[-self._limit:]
        newest = rows[0] if rows else None
        seen = next((i for i in range(len(entries) - 1, -1, -1) if entries[i] is newest), None)
        if seen is None:  # first fill, or everything shown has left the log: start over
            if entries or rows:
                self.set_records(list(reversed(entries)))
            return
        new = entries[seen + 1:]
        if not new:
            return
        self.beginInsertRows(QModelIndex(), 0, len(new) - 1)
        rows[:0] = reversed(new)
        self.endInsertRows()
        if len(rows) > self._limit:
            self.beginRemoveRows(QModelIndex(), self._limit, len(rows) - 1)
            del rows[self._limit:]
            self.endRemoveRows()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (role == Qt.ItemDataRole.ForegroundRole and index.isValid()
                and index.column() == STATUS and self.record(index.row()).status >= 400):
            return QColor(ERROR_COLOR)
        return super().data(index, role)
