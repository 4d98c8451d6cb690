"""The search results table: one row per GGUF repository the Hub returned."""

from __future__ import annotations

from datetime import UTC, datetime

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


def results_model(parent: QWidget | None = None) -> ColumnTableModel:
    """The search results: each search replaces the whole list."""
    return ColumnTableModel(COLUMNS, _tooltip, parent)
