"""The search results table: one row per GGUF repository the Hub returned."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QWidget

from app.engine.gguf_info import human_count
from app.engine.hub import HubModel

_Index = QModelIndex | QPersistentModelIndex


def _age(when: datetime | None, now: datetime | None = None) -> str:
    """``3 days ago``-style text, the way the Hub lists updates."""
    if when is None:
        return "—"
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    days = (now - when).days
    if days < 1:
        return "today"
    for size, unit in ((365, "year"), (30, "month"), (7, "week"), (1, "day")):
        if days >= size:
            n = days // size
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "today"


def _tags(m: HubModel) -> str:
    return ", ".join(m.notable_tags + (("gated",) if m.gated else ()))


# (header, text shown, right-aligned)
COLUMNS: list[tuple[str, Callable[[HubModel], str], bool]] = [
    # The author has its own column, so the name alone keeps the table narrow.
    ("Model", lambda m: m.repo_id.split("/", 1)[-1], False),
    ("Author", lambda m: m.author, False),
    ("Params", lambda m: human_count(m.parameters) if m.parameters else "—", True),
    ("Downloads", lambda m: human_count(m.downloads), True),
    ("Likes", lambda m: human_count(m.likes), True),
    ("Updated", lambda m: _age(m.last_modified), False),
    ("Tags", _tags, False),
    ("Licence", lambda m: m.licence or "—", False),
]


class ResultsModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._models: list[HubModel] = []

    def set_results(self, models: list[HubModel]) -> None:
        # Each search replaces the whole list, so a reset is what happened.
        self.beginResetModel()
        self._models = list(models)
        self.endResetModel()

    def model_at(self, row: int) -> HubModel:
        return self._models[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._models)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        model = self._models[index.row()]
        _header, text, right = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text(model)
        if role == Qt.ItemDataRole.ToolTipRole:
            tags = ", ".join(t for t in model.tags if not t.startswith("license:"))
            return f"{model.repo_id}\nTags: {tags}" if tags else model.repo_id
        if role == Qt.ItemDataRole.TextAlignmentRole and right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None
