"""Wire finished quantizations into the library: outputs, their lineage, their quality report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.engine.gguf_info import read_model_info
from app.engine.quantize import QuantizedFile
from app.models.records import ModelFileRecord
from app.models.store import Store


def register_quantized(
    store: Store, source: Path, outputs: Sequence[QuantizedFile], imatrix: Path | None = None
) -> list[ModelFileRecord]:
    """Add each output to the library and record which source and type it came from."""
    records = []
    for output in outputs:
        records.append(store.add_model_file(read_model_info(output.path), "quantize"))
        store.add_lineage(output.path, Path(source).resolve(), output.type_name, imatrix)
    return records

