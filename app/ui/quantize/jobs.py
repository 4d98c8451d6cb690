"""The background halves of the quantize dialog that only the dialog needs (size and fit
predictions, plan-or-ask); run through `TaskRunner`, so the GUI thread never waits on them. The
jobs it shares with `hearth quantize` are in `app.services.quantized`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from app.engine.gguf.quant_types import QuantType
from app.engine.quantize.quantize import (
    QuantizePlan,
    QuantizeRequest,
    existing_outputs,
    plan_quantize,
    predict_sizes,
    predicted_info,
)
from app.engine.sizing.fit_verdict import FitBadge, estimated_fit
from app.engine.sizing.hardware import GpuInfo
from app.engine.sizing.memory_estimate import shape_of
from app.engine.types import ModelInfo


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


def plan_or_existing(
    request: QuantizeRequest, known_sizes: dict[str, int | None]
) -> QuantizePlan | list[Path]:
    """The plan, or the outputs that exist already so the dialog can ask before replacing."""
    existing = existing_outputs(request)
    return existing if existing else plan_quantize(request, known_sizes=known_sizes)
