"""The Store's model library: model files, where quantized ones came from (lineage), their
quality reports, and estimated-vs-measured memory checks.

A model file's GGUF header values (ModelInfo) are one JSON value, `model_files.info`; only what
queries look up (path) or what the Store itself adds (source, added_at) has a column.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import String, delete, select, type_coerce
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row

from app.engine.inference.events import MemoryCheck as MemoryCheckEvent
from app.engine.quantize.quality import QualityReport as QualityReportValue
from app.engine.quantize.quality import QualityRow
from app.engine.types import ModelInfo
from app.models.records import (
    MODEL_SOURCES,
    LineageRecord,
    MemoryCheckRecord,
    ModelFileRecord,
    ModelSource,
    QualityReportRecord,
)
from app.models.store.database import Database
from app.models.store_values import check
from app.models.tables import (
    MemoryCheck,
    ModelFile,
    ModelLineage,
    QualityReport,
    QualityResult,
    utcnow,
)

log = logging.getLogger(__name__)

# `info` comes back as text and is decoded in _model_file, where a damaged value can be caught.
_MODEL_FILE_COLUMNS = (
    ModelFile.id, ModelFile.source, ModelFile.added_at, ModelFile.path,
    type_coerce(ModelFile.info, String).label("info"),
)
# The ModelInfo fields that live in the JSON value: all but the path, which is a column.
_INFO_FIELDS = {f.name: f for f in dataclasses.fields(ModelInfo) if f.name != "path"}
_LINEAGE_COLUMNS = [getattr(ModelLineage, name) for name in LineageRecord.__dataclass_fields__]
_QUALITY_ROW_COLUMNS = [getattr(QualityResult, name) for name in QualityRow.__dataclass_fields__]
# In MemoryCheckRecord's field order, so a row unpacks straight into one.
_MEMORY_CHECK_COLUMNS = [getattr(MemoryCheck, name)
                         for name in MemoryCheckRecord.__dataclass_fields__]


def _info_json(info: ModelInfo) -> dict[str, Any]:
    """The value stored in `model_files.info` for ``info``."""
    return {name: getattr(info, name) for name in _INFO_FIELDS} | {
        "layer_tensor_bytes": list(info.layer_tensor_bytes)
    }


def _model_file(row: Row[Any]) -> ModelFileRecord | None:
    """The record for a row, or None when its JSON lacks a field ModelInfo cannot do without.

    Keys ModelInfo does not know are ignored and fields it has a default for may be missing, so
    a field added to or dropped from ModelInfo needs no migration.
    """
    try:
        stored = json.loads(row.info)
    except (TypeError, ValueError):
        stored = None
    if not isinstance(stored, dict):
        stored = {}
    values: dict[str, Any] = {}
    for name, spec in _INFO_FIELDS.items():
        if name in stored:
            values[name] = stored[name]
        elif spec.default is not dataclasses.MISSING:
            values[name] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            values[name] = spec.default_factory()
        else:
            log.warning("model file %r: stored info has no %r; skipped", row.path, name)
            return None
    values["layer_tensor_bytes"] = tuple(values["layer_tensor_bytes"] or ())
    return ModelFileRecord(id=row.id, source=row.source, added_at=row.added_at, path=row.path,
                           **values)


class ModelLibrary(Database):
    """Store mixin: model files with their lineage, quality reports and memory checks."""

    # model files

    def add_model_file(self, info: ModelInfo, source: ModelSource = "import") -> ModelFileRecord:
        """Insert or, when the path is already known, refresh a model file's row."""
        check(source, MODEL_SOURCES, "model source")
        values = {"source": source, "info": _info_json(info)}
        statement = (
            sqlite_insert(ModelFile).values(path=info.path, added_at=utcnow(), **values)
            .on_conflict_do_update(index_elements=[ModelFile.path], set_=values)
            .returning(*_MODEL_FILE_COLUMNS)
        )
        with self._writing() as session:
            record = _model_file(session.execute(statement).one())
        assert record is not None  # _info_json wrote every field
        return record

    def list_model_files(self) -> list[ModelFileRecord]:
        query = select(*_MODEL_FILE_COLUMNS).order_by(ModelFile.path)
        with self._reading() as conn:
            records = [_model_file(row) for row in conn.execute(query)]
        return [record for record in records if record is not None]

    def get_model_file_by_path(self, path: str | Path) -> ModelFileRecord | None:
        query = select(*_MODEL_FILE_COLUMNS).where(ModelFile.path == str(path))
        with self._reading() as conn:
            row = conn.execute(query).first()
        return _model_file(row) if row else None

    def remove_model_file(self, model_file_id: int) -> bool:
        """Forget a model file (the file on disk is left alone)."""
        return self._update(delete(ModelFile).where(ModelFile.id == model_file_id))

    # memory checks (estimated vs measured memory per load)

    def add_memory_check(self, check: MemoryCheckEvent) -> MemoryCheckRecord:
        row = MemoryCheck(
            model_path=check.model_path, n_ctx=check.n_ctx, kv_type=check.kv_type,
            gpu_layers=check.gpu_layers, estimated_ram=check.estimated_ram,
            actual_ram=check.actual_ram_growth, estimated_vram=check.estimated_vram,
            actual_vram=check.actual_vram_growth, after_reply=check.after_reply,
        )
        with self._writing() as session:
            session.add(row)
            session.flush()
            return MemoryCheckRecord(*(getattr(row, c.key) for c in _MEMORY_CHECK_COLUMNS))

    def list_memory_checks(self, model_path: str | Path) -> list[MemoryCheckRecord]:
        """The pairs stored for ``model_path``, oldest first."""
        with self._reading() as conn:
            rows = conn.execute(
                select(*_MEMORY_CHECK_COLUMNS)
                .where(MemoryCheck.model_path == str(model_path))
                .order_by(MemoryCheck.id)
            ).all()
        return [MemoryCheckRecord(*row) for row in rows]

    # quantization: lineage and quality reports

    def add_lineage(
        self, output_path: str | Path, source_path: str | Path, quant_type: str,
        imatrix_path: str | Path | None = None,
    ) -> LineageRecord:
        """Record (or replace) where the model at ``output_path`` was quantized from."""
        values = {"source_path": str(source_path), "quant_type": quant_type,
                  "imatrix_path": str(imatrix_path) if imatrix_path else None,
                  "created_at": utcnow()}
        statement = (
            sqlite_insert(ModelLineage).values(output_path=str(output_path), **values)
            .on_conflict_do_update(index_elements=[ModelLineage.output_path], set_=values)
            .returning(*_LINEAGE_COLUMNS)
        )
        with self._writing() as session:
            return LineageRecord(*session.execute(statement).one())

    def list_lineage(self) -> dict[str, LineageRecord]:
        """Every recorded lineage by output path, for showing a whole library at once."""
        with self._reading() as conn:
            return {row[0]: LineageRecord(*row)
                    for row in conn.execute(select(*_LINEAGE_COLUMNS))}

    def get_lineage(self, output_path: str | Path) -> LineageRecord | None:
        query = select(*_LINEAGE_COLUMNS).where(ModelLineage.output_path == str(output_path))
        with self._reading() as conn:
            row = conn.execute(query).first()
        return LineageRecord(*row) if row else None

    def save_quality_report(self, report: QualityReportValue) -> QualityReportRecord:
        with self._writing() as session:
            header = QualityReport(source_path=report.source_path, sample=report.sample,
                                   n_ctx=report.n_ctx, n_chunks=report.n_chunks,
                                   gpu_layers=report.gpu_layers)
            session.add(header)
            session.flush()
            session.add_all(
                QualityResult(report_id=header.id, position=i, **vars(row))
                for i, row in enumerate(report.rows)
            )
            return QualityReportRecord(header.id, header.created_at, report)

    def quality_report_paths(self) -> set[str]:
        """Paths of every model some report measured, as the source or as an output."""
        query = select(QualityReport.source_path).union(select(QualityResult.path))
        with self._reading() as conn:
            return set(conn.execute(query).scalars())

    def latest_quality_report(self, model_path: str | Path) -> QualityReportRecord | None:
        """The newest report that measured ``model_path``, as the source or as an output."""
        path = str(model_path)
        in_results = select(QualityResult.report_id).where(QualityResult.path == path)
        query = (
            select(QualityReport)
            .where((QualityReport.source_path == path) | QualityReport.id.in_(in_results))
            .order_by(QualityReport.id.desc())
            .limit(1)
        )
        with self._reading() as conn:
            header = conn.execute(query).first()
            if header is None:
                return None
            rows = conn.execute(
                select(*_QUALITY_ROW_COLUMNS)
                .where(QualityResult.report_id == header.id)
                .order_by(QualityResult.position)
            ).all()
        report = QualityReportValue(
            header.source_path, header.sample, header.n_ctx, header.n_chunks,
            tuple(QualityRow(*row) for row in rows), header.gpu_layers,
        )
        return QualityReportRecord(header.id, header.created_at, report)
