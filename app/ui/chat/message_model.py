"""The messages of one chat as a Qt list model, windowed so long chats open at once.

All records of the chat are held (loading them is one fast query), but only the newest
`WINDOW` are exposed as rows: a view lays out every row it is given, and laying out 10,000
Markdown documents would take seconds. Older rows are prepended in batches when the view
reaches the top (`fetch_older`). While a reply streams only the last row changes.

The records are the chat's branch on screen. A message with other versions (regenerated
replies, edits) reports "n of m" in `VersionRole`; switching versions replaces only the rows from
that message on (`replace_from`).

Qt's own canFetchMore/fetchMore are deliberately not used: views call them whenever the last
row is visible, which in a chat is always, so they would page the whole history in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from app.engine.types import GenerationStats
from app.models.records import MessageRecord, MessageStatus

WINDOW = 40
FETCH_BATCH = 40

RecordRole = Qt.ItemDataRole.UserRole + 1
IdRole = Qt.ItemDataRole.UserRole + 2
RoleRole = Qt.ItemDataRole.UserRole + 3
StatusRole = Qt.ItemDataRole.UserRole + 4
ErrorRole = Qt.ItemDataRole.UserRole + 5
StatsRole = Qt.ItemDataRole.UserRole + 6
VersionRole = Qt.ItemDataRole.UserRole + 7  # (1-based number, count), or None: one version
PrettyJsonRole = Qt.ItemDataRole.UserRole + 8  # show a JSON reply indented (structured output)

_Index = QModelIndex | QPersistentModelIndex


class MessageListModel(QAbstractListModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._records: list[MessageRecord] = []
        self._first = 0  # index in _records of the first exposed row
        self._stats: dict[int, GenerationStats | None] = {}  # decoded lazily, per message id
        self._versions: dict[int, tuple[int, ...]] = {}  # message id -> ids of its versions
        self._pretty_json = False  # the chat's structured output is on

    # -- Qt model API --------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self._records) - self._first

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < self.rowCount():
            return None
        record = self._records[self._first + index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return record.content
        if role == RecordRole:
            return record
        if role == IdRole:
            return record.id
        if role == RoleRole:
            return record.role
        if role == StatusRole:
            return record.status
        if role == ErrorRole:
            return record.error
        if role == StatsRole:
            return self.stats_of(record)
        if role == VersionRole:
            return self.version_of(record.id)
        if role == PrettyJsonRole:
            return self._pretty_json and record.role == "assistant"
        return None

    # -- loading -------------------------------------------------------------------------------
    def set_messages(
        self,
        records: Sequence[MessageRecord],
        versions: dict[int, tuple[int, ...]] | None = None,
    ) -> None:
        """Show another chat; the only reset this model does (see also `replace_from`)."""
        self.beginResetModel()
        self._records = list(records)
        self._first = max(0, len(self._records) - WINDOW)
        self._stats = {}
        self._versions = dict(versions or {})
        self.endResetModel()

    def set_versions(self, versions: dict[int, tuple[int, ...]]) -> None:
        """New version lists (after regenerate, edit or delete); repaints the rows that changed."""
        changed = {m for m in versions.keys() | self._versions.keys()
                   if versions.get(m) != self._versions.get(m)}
        self._versions = dict(versions)
        for message_id in changed:
            row = self.row_of(message_id)
            if row is not None:
                index = self.index(row, 0)
                self.dataChanged.emit(index, index, [VersionRole])

    def set_pretty_json(self, on: bool) -> None:
        """Show assistant replies that are JSON indented (the chat's structured output is on);
        repaints the rows only when that changes."""
        if on == self._pretty_json:
            return
        self._pretty_json = on
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, 0),
                                  [PrettyJsonRole])

    def can_fetch_older(self) -> bool:
        return self._first > 0

    def fetch_older(self, count: int = FETCH_BATCH) -> int:
        """Expose up to `count` older messages as new rows at the top; returns how many."""
        count = min(count, self._first)
        if count <= 0:
            return 0
        self.beginInsertRows(QModelIndex(), 0, count - 1)
        self._first -= count
        self.endInsertRows()
        return count

    # -- reading -------------------------------------------------------------------------------
    @property
    def total_count(self) -> int:
        return len(self._records)

    def records(self) -> list[MessageRecord]:
        """Every message of the chat, including those not yet exposed as rows."""
        return list(self._records)

    def record(self, row: int) -> MessageRecord:
        return self._records[self._first + row]

    def last_record(self) -> MessageRecord | None:
        return self._records[-1] if self._records else None

    def record_at(self, position: int) -> MessageRecord:
        """The message at that index among all records, exposed or not (see `position_of`)."""
        return self._records[position]

    def has_role(self, role: str) -> bool:
        """Whether any message of the chat, exposed or not, has that role."""
        return any(record.role == role for record in self._records)

    def row_of(self, message_id: int) -> int | None:
        """The row showing that message, or None when it is not (yet) exposed."""
        position = self.position_of(message_id)
        return None if position is None or position < self._first else position - self._first

    def position_of(self, message_id: int) -> int | None:
        """Index of that message among all records, exposed or not."""
        for position in range(len(self._records) - 1, -1, -1):
            if self._records[position].id == message_id:
                return position
        return None

    def first_exposed_position(self) -> int:
        """Index among all records of the message in row 0."""
        return self._first

    def version_of(self, message_id: int) -> tuple[int, int] | None:
        """(1-based number, count) of a message that has other versions, else None."""
        versions = self._versions.get(message_id)
        if not versions or len(versions) < 2:
            return None
        return versions.index(message_id) + 1, len(versions)

    def sibling_version(self, message_id: int, step: int) -> int | None:
        """The id of the version `step` places before (-1) or after (+1) this one, if any."""
        versions = self._versions.get(message_id, ())
        if message_id not in versions:
            return None
        position = versions.index(message_id) + step
        return versions[position] if 0 <= position < len(versions) else None

    def stats_of(self, record: MessageRecord) -> GenerationStats | None:
        if record.id not in self._stats:
            self._stats[record.id] = record.stats
        return self._stats[record.id]

    # -- changes -------------------------------------------------------------------------------
    def append_message(self, record: MessageRecord) -> None:
        row = self.rowCount()
        self.beginInsertRows(QModelIndex(), row, row)
        self._records.append(record)
        self.endInsertRows()

    def append_to_last(self, text: str) -> None:
        """Streaming: grow the last message and tell views that only that row changed."""
        if not self._records or not text:
            return
        last = self._records[-1]
        self._records[-1] = dataclasses.replace(last, content=last.content + text)
        self._last_changed()

    def replace_last(self, record: MessageRecord) -> None:
        """The last message changed as a whole (a reply's tool calls were saved with it)."""
        if self._records:
            self._records[-1] = record
            self._last_changed()

    def set_last_state(
        self,
        status: MessageStatus,
        *,
        error: str | None = None,
        stats: GenerationStats | None = None,
    ) -> None:
        if not self._records:
            return
        last = self._records[-1]
        self._records[-1] = dataclasses.replace(last, status=status, error=error)
        self._stats[last.id] = stats
        self._last_changed()

    def remove_from(self, message_id: int) -> int:
        """Drop that message and every later one (edit-and-resend, regenerate)."""
        position = self.position_of(message_id)
        if position is None:
            return 0
        removed = len(self._records) - position
        if position < self._first:
            # The message was not exposed: keep the window's size by showing older rows.
            self.beginResetModel()
            del self._records[position:]
            self._first = max(0, len(self._records) - WINDOW)
            self.endResetModel()
            return removed
        first_row, last_row = position - self._first, len(self._records) - 1 - self._first
        self.beginRemoveRows(QModelIndex(), first_row, last_row)
        del self._records[position:]
        self.endRemoveRows()
        return removed

    def replace_from(self, message_id: int, records: Sequence[MessageRecord]) -> bool:
        """Swap that message and every later one for `records` (another version's branch).

        Rows before it stay as they are, so only the rows that change are laid out again.
        False (nothing changed) when the message is not in the model.
        """
        position = self.position_of(message_id)
        if position is None:
            return False
        self.remove_from(message_id)
        if not records:
            return True
        row = self.rowCount()
        self.beginInsertRows(QModelIndex(), row, row + len(records) - 1)
        self._records.extend(records)
        self.endInsertRows()
        return True

    def _last_changed(self) -> None:
        index = self.index(self.rowCount() - 1, 0)
        self.dataChanged.emit(index, index)
