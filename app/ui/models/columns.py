"""The My Models table's columns: what each shows and how it sorts."""

from __future__ import annotations

from collections.abc import Callable

from app.engine.inference.arch_support import architecture_label
from app.engine.units import human_bytes, human_count
from app.ui.column_table import Column

COLUMNS = [
    Column("Name", lambda r: r.name, lambda r: r.name.lower()),
    Column("Architecture", lambda r: architecture_label(r.architecture)),
    Column("Params", lambda r: human_count(r.parameter_count), lambda r: r.parameter_count,
           right=True),
    Column("Quant", lambda r: r.file_type),
    Column("Size", lambda r: human_bytes(r.file_size), lambda r: r.file_size, right=True),
    Column("Context", lambda r: f"{r.context_length:,}", lambda r: r.context_length,
           right=True),
    Column("Layers", lambda r: str(r.block_count), lambda r: r.block_count, right=True),
    Column("Chat template", lambda r: "yes" if r.has_chat_template else "no"),
    Column("Source", lambda r: r.source),
    Column("Path", lambda r: r.path),
]


def model_columns(is_vision: Callable[[str], bool]) -> list[Column]:
    """`COLUMNS` with "Vision" after "Chat template": ``is_vision(path)`` says whether the model
    loads with a vision projector (a column, so the library sorts vision models together)."""
    at = [c.header for c in COLUMNS].index("Chat template") + 1
    vision = Column("Vision", lambda r: "vision" if is_vision(r.path) else "")
    return [*COLUMNS[:at], vision, *COLUMNS[at:]]
