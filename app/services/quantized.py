"""Wire quantizations into the library: outputs, their lineage, their quality report.

The generators here wrap the engine's jobs with the Store work that follows them, so the quantize
dialog (through a background worker) and `hearth quantize` (in its own thread) do the same thing.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.engine.gguf.info import read_model_info
from app.engine.quantize.quality import EvalProgress, EvaluateJob
from app.engine.quantize.quantize import QuantizedFile, QuantizeError, QuantizeJob, QuantizeProgress
from app.models.records import ModelFileRecord, QualityReportRecord
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


@dataclass(frozen=True)
class QuantizeOutcome:
    files: list[QuantizedFile]  # finished and registered in the library
    records: list[ModelFileRecord]
    error: QuantizeError | None  # why it stopped early (QuantizeCancelled when cancelled)


def quantize_and_register(
    job: QuantizeJob, store: Store
) -> Generator[QuantizeProgress, None, QuantizeOutcome]:
    """Run ``job`` and add what it made to the library, including the outputs finished before a
    cancel or an error (they are complete; only the one in progress is dropped)."""
    error: QuantizeError | None = None
    try:
        yield from job.run()
    except QuantizeError as exc:
        error = exc
    files = list(job.finished)
    records = register_quantized(store, job.plan.source.path, files, job.plan.request.imatrix)
    return QuantizeOutcome(files, records, error)


def evaluate_and_save(
    job: EvaluateJob, store: Store
) -> Generator[EvalProgress, None, QualityReportRecord]:
    """Measure the source and the outputs, and keep the report in the Store."""
    report = yield from job.run()
    return store.save_quality_report(report)
