"""The search results table: one row per GGUF repository the Hub returned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QWidget

from app.engine.hub.api import HubModel
from app.engine.units import human_count
from app.ui.column_table import Column, ColumnTableModel


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


def _tooltip(model: HubModel) -> str:
    tags = ", ".join(t for t in model.tags if not t.startswith("license:"))
    return f"{model.repo_id}\nTags: {tags}" if tags else model.repo_id


COLUMNS = [
    # The author has its own column, so the name alone keeps the table narrow.
    Column("Model", lambda m: m.repo_id.split("/", 1)[-1]),
    Column("Author", lambda m: m.author),
    Column("Params", lambda m: human_count(m.parameters) if m.parameters else "—", right=True),
    Column("Downloads", lambda m: human_count(m.downloads), right=True),
    Column("Likes", lambda m: human_count(m.likes), right=True),
    Column("Updated", lambda m: _age(m.last_modified)),
    Column("Tags", _tags),
    Column("Licence", lambda m: m.licence or "—"),
]


TAGS_COLUMN = [c.header for c in COLUMNS].index("Tags")


class ResultsModel(ColumnTableModel):
    """The search results, with "vision" added to the tags of a repository whose file list
    (fetched when it was opened) holds a projector though its Hub tags do not say so."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(COLUMNS, _tooltip, parent)
        self._vision: set[str] = set()  # kept across searches: it is a fact about the repo

    def mark_vision(self, repo_id: str) -> None:
        if repo_id in self._vision:
            return
        self._vision.add(repo_id)
        row = self.row_where(lambda m: m.repo_id == repo_id)
        if row >= 0:
            cell = self.index(row, TAGS_COLUMN)
            self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DisplayRole])

    def data(self, index: QModelIndex | QPersistentModelIndex,
             role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        text = super().data(index, role)
        if (role == Qt.ItemDataRole.DisplayRole and index.column() == TAGS_COLUMN
                and index.isValid()):
            model: HubModel = self.record(index.row())
            if model.repo_id in self._vision and "vision" not in model.notable_tags:
                return ", ".join(filter(None, ("vision", text)))
        return text


def results_model(parent: QWidget | None = None) -> ResultsModel:
    """The search results: each search replaces the whole list."""
    return ResultsModel(parent)
