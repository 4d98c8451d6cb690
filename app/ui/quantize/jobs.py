"""The background halves of the quantize dialog: plain functions and generators that the
dialog runs through `TaskRunner`, so the GUI thread never waits on llama.cpp, the disk or SQL."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.engine.fit import shape_of
from app.engine.hardware import GpuInfo
from app.engine.quality import EvalProgress, EvaluateJob
from app.engine.quant_types import QuantType
from app.engine.quantize import (
    QuantizedFile,
    QuantizeError,
    QuantizeJob,
    QuantizePlan,
    QuantizeProgress,
    QuantizeRequest,
    output_path,
    plan_quantize,
    predict_sizes,
    predicted_info,
)
from app.engine.types import ModelInfo
from app.models.quantized import register_quantized
from app.models.records import ModelFileRecord, QualityReportRecord
from app.models.store import Store
from app.ui.discover.fit_badge import FitBadge, estimated_fit


@dataclass(frozen=True)
class Prediction:
    size: int | None  # None: llama.cpp's dry run could not tell
    fit: FitBadge | None


def predict_targets(
    source: ModelInfo, types: Sequence[QuantType], imatrix: Path | None, threads: int,
    gpus: list[GpuInfo],
) -> dict[str, Prediction]:
    """Each type's predicted size (llama.cpp dry run) and whether that output fits here."""
    sizes = predict_sizes(Path(source.path), types, imatrix, threads)
    shape = shape_of(source)
    ram = int(psutil.virtual_memory().available)
    return {
        name: Prediction(size, None if size is None
                         else estimated_fit(predicted_info(source, size), shape, ram, gpus))
        for name, size in sizes.items()
    }


def existing_outputs(request: QuantizeRequest) -> list[Path]:
    """Outputs that would be replaced; the user is asked before `plan_quantize` refuses them."""
    if request.overwrite:
        return []
    paths = (output_path(Path(request.source).resolve(), t, request.out_dir)
             for t in request.types)
    return [p for p in paths if p.exists()]


def plan_or_existing(
    request: QuantizeRequest, known_sizes: dict[str, int | None]
) -> QuantizePlan | list[Path]:
    existing = existing_outputs(request)
    return existing if existing else plan_quantize(request, known_sizes=known_sizes)


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


def describe_eval(step: EvalProgress) -> str:
    if step.stage == "perplexity":
        return f"Measuring {step.label}: perplexity window {step.step} of {step.steps}"
    if step.stage == "speed":
        return f"Measuring {step.label}: speed"
    return f"Measuring {step.label}: loading ({step.index + 1} of {step.count})"


def describe_quantize(step: QuantizeProgress) -> str:
    where = f"{step.type_name} ({step.index + 1} of {step.count})"
    if not step.n_tensors:
        return f"{where}: starting"
    return f"{where}: tensor {step.tensor} of {step.n_tensors}"

