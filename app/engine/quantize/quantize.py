"""Quantize a GGUF model to one or more smaller types, safely.

`plan_quantize` checks everything a user can get wrong before any work starts (a missing or
non-GGUF source, an already-quantized source without consent, IQ types without an importance
matrix, an output that would overwrite the source, too little disk space) and predicts each
output's size with llama.cpp's dry run. `QuantizeJob` then runs one child process per type,
writing ``<name>.gguf.part`` and renaming it only once llama.cpp reports success, so a cancel,
a crash or a full disk leaves nothing behind.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.gguf.quant_types import QUANT_TYPES, QuantType, quant_type, requantize_warning
from app.engine.paths import data_paths
from app.engine.quantize.worker_process import WorkerCancelled, WorkerError, WorkerProcess
from app.engine.types import ModelInfo
from app.engine.units import human_bytes

log = logging.getLogger(__name__)

# Room kept free beyond the predicted outputs: the file system and SQLite still need to write.
DISK_MARGIN = 64 * 1024 * 1024
_QUANT_SUFFIX = re.compile(
    r"[-_.](" + "|".join(re.escape(t.name) for t in QUANT_TYPES) + r"|F32|FP16|FP32)$",
    re.IGNORECASE,
)


class QuantizeError(RuntimeError):
    """Quantizing cannot start or failed; the message is meant for the user."""


class QuantizeCancelled(QuantizeError):
    """The user cancelled; nothing was left on disk."""


class RequantizeRefused(QuantizeError):
    """The source is already quantized and the user has not accepted the warning."""


class OutputExists(QuantizeError):
    """An output file exists and the user has not asked to replace it."""


@dataclass(frozen=True)
class QuantizeRequest:
    source: Path
    types: tuple[str, ...]
    out_dir: Path | None = None  # default: Hearth's models folder, quantized/<model>/
    imatrix: Path | None = None
    threads: int = 0  # 0: llama.cpp's default (every hardware thread)
    allow_requantize: bool = False  # the user accepted the requantize warning
    overwrite: bool = False  # replace outputs that already exist


@dataclass(frozen=True)
class TargetPlan:
    quant: QuantType
    output: Path
    predicted_size: int | None  # None when llama.cpp's dry run could not tell
    exists: bool


@dataclass(frozen=True)
class QuantizePlan:
    request: QuantizeRequest
    source: ModelInfo
    warning: str | None  # the requantize warning the user accepted, if any
    targets: tuple[TargetPlan, ...]
    free_bytes: int

    @property
    def needed_bytes(self) -> int:
        return sum(t.predicted_size or self.source.file_size for t in self.targets)


@dataclass(frozen=True)
class QuantizeProgress:
    index: int  # which target, from 0
    count: int  # how many targets
    type_name: str
    tensor: int  # tensors done for this target
    n_tensors: int

    @property
    def fraction(self) -> float:
        """Progress over the whole job, 0..1."""
        within = self.tensor / self.n_tensors if self.n_tensors else 0.0
        return (self.index + within) / self.count if self.count else 1.0

    def describe(self) -> str:
        """``Q4_K_M (1 of 2): tensor 57 of 291``, for a status line."""
        where = f"{self.type_name} ({self.index + 1} of {self.count})"
        if not self.n_tensors:
            return f"{where}: starting"
        return f"{where}: tensor {self.tensor} of {self.n_tensors}"


@dataclass(frozen=True)
class QuantizedFile:
    type_name: str
    path: Path
    size: int
    seconds: float


def base_name(source: Path) -> str:
    """``gemma-3-270m-Q4_K_M.gguf`` → ``gemma-3-270m``: the model's name without its quant."""
    return _QUANT_SUFFIX.sub("", source.name.removesuffix(".gguf")) or source.stem


def default_out_dir(source: Path) -> Path:
    return data_paths().models / "quantized" / base_name(source)


def output_path(source: Path, type_name: str, out_dir: Path | None = None) -> Path:
    folder = Path(out_dir).expanduser() if out_dir is not None else default_out_dir(source)
    # Absolute, because the path is what the library stores.
    return folder.absolute() / f"{base_name(source)}-{type_name}.gguf"


def part_path(output: Path) -> Path:
    return output.with_name(output.name + ".part")


def free_disk_bytes(folder: Path) -> int:
    """Free bytes on the file system that holds ``folder`` (or its nearest existing parent)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_source(path: Path) -> ModelInfo:
    """The source's header, or a QuantizeError that says what is wrong with the file."""
    path = Path(path)
    if not path.exists():
        raise QuantizeError(f"The source model does not exist: {path}")
    if not path.is_file():
        raise QuantizeError(f"The source is not a file: {path}")
    try:
        return read_model_info(path)
    except GGUFError as exc:
        raise QuantizeError(f"Cannot quantize {path.name}: {exc}") from exc


def predicted_info(source: ModelInfo, size: int) -> ModelInfo:
    """The source's header with tensor sizes scaled to an output of ``size`` bytes, so the fit
    estimator can judge a file that does not exist yet."""
    ratio = size / source.file_size if source.file_size else 1.0
    return replace(
        source,
        file_size=size,
        layer_tensor_bytes=[int(b * ratio) for b in source.layer_tensor_bytes],
        other_tensor_bytes=int(source.other_tensor_bytes * ratio),
    )


def predict_sizes(
    source: Path, types: Sequence[QuantType], imatrix: Path | None = None, threads: int = 0
) -> dict[str, int | None]:
    """Each type's output size in bytes from llama.cpp's dry run (None where it failed)."""
    worker = WorkerProcess({
        "cmd": "dry_run", "source": str(source), "source_size": Path(source).stat().st_size,
        "targets": [{"type": t.name, "ftype": t.ftype} for t in types],
        "imatrix": str(imatrix) if imatrix else None, "threads": threads,
        "allow_requantize": True,
    })
    sizes: dict[str, int | None] = {t.name: None for t in types}
    try:
        for message in worker.messages():
            if "size" in message:
                sizes[message["type"]] = int(message["size"])
            elif "failed" in message:
                log.warning("dry run for %s: %s", message["type"], message["failed"])
    except WorkerError as exc:
        log.warning("dry run failed: %s", exc)
    return sizes


def plan_quantize(
    request: QuantizeRequest,
    *,
    predict: bool = True,
    known_sizes: Mapping[str, int | None] | None = None,
) -> QuantizePlan:
    """Validate ``request`` and predict output sizes; QuantizeError says what to fix.

    ``known_sizes`` are predictions already made (the dialog makes them while the user picks
    types); only the types missing from it are dry-run again.
    """
    source = check_source(request.source)
    if not request.types:
        raise QuantizeError("Choose at least one type to quantize to.")
    try:
        quants = list(dict.fromkeys(quant_type(name) for name in request.types))
    except ValueError as exc:
        raise QuantizeError(str(exc)) from exc
    warning = requantize_warning(source.file_type)
    if warning and not request.allow_requantize:
        raise RequantizeRefused(warning)
    if request.imatrix is not None:
        check_imatrix(request.imatrix)
    else:
        needing = [q.name for q in quants if q.needs_imatrix]
        if needing:
            raise QuantizeError(
                f"{', '.join(needing)} need an importance matrix (imatrix file); "
                "choose one, or pick a K-quant such as Q4_K_M."
            )

    source_path = Path(request.source).resolve()
    sizes = dict(known_sizes or {})
    unknown = [q for q in quants if sizes.get(q.name) is None]
    if predict and unknown:
        sizes.update(predict_sizes(source_path, unknown, request.imatrix, request.threads))
    targets = []
    for quant in quants:
        output = output_path(source_path, quant.name, request.out_dir)
        if output.resolve() == source_path:
            raise QuantizeError(
                f"The {quant.name} output would overwrite the source model {source_path.name}; "
                "choose another output folder."
            )
        exists = output.exists()
        if exists and not request.overwrite:
            raise OutputExists(f"{output} already exists. Delete it or choose another folder.")
        targets.append(TargetPlan(quant, output, sizes.get(quant.name), exists))

    out_dir = targets[0].output.parent
    plan = QuantizePlan(request, source, warning, tuple(targets), free_disk_bytes(out_dir))
    _check_disk(plan.needed_bytes, plan.free_bytes, out_dir)
    return plan


def existing_outputs(request: QuantizeRequest) -> list[Path]:
    """Outputs ``request`` would replace, so a caller can ask before `plan_quantize` refuses."""
    if request.overwrite:
        return []
    source = Path(request.source).resolve()
    paths = (output_path(source, t, request.out_dir) for t in request.types)
    return [p for p in paths if p.exists()]


def check_imatrix(path: Path) -> None:
    """QuantizeError (saying why) unless ``path`` is an importance matrix llama.cpp can use."""
    from app.engine.quantize.imatrix import ImatrixError, load_imatrix

    try:
        load_imatrix(path)
    except (ImatrixError, OSError) as exc:
        raise QuantizeError(str(exc)) from exc


def _check_disk(needed: int, free: int, folder: Path) -> None:
    if needed + DISK_MARGIN > free:
        raise QuantizeError(
            f"Not enough disk space in {folder}: the output needs about {human_bytes(needed)} "
            f"but only {human_bytes(free)} is free. Free some space or choose another folder."
        )


class QuantizeJob:
    """Runs a plan's targets one after another; `cancel` may be called from any thread."""

    def __init__(self, plan: QuantizePlan) -> None:
        self.plan = plan
        self._worker: WorkerProcess | None = None
        self._cancelled = threading.Event()  # shared with every worker this job starts
        # Outputs completed so far: after a failure or cancel they are still complete and
        # verified, so callers add them to the library; only the one in progress is removed.
        self.finished: list[QuantizedFile] = []

    def cancel(self) -> None:
        self._cancelled.set()
        if self._worker is not None:
            self._worker.cancel()

    def run(self) -> Generator[QuantizeProgress, None, list[QuantizedFile]]:
        """Yield progress per tensor; return the finished files, or raise QuantizeError."""
        count = len(self.plan.targets)
        for index, target in enumerate(self.plan.targets):
            yield QuantizeProgress(index, count, target.quant.name, 0, 0)
            self.finished.append((yield from self._run_one(index, target)))
        return list(self.finished)

    def _run_one(
        self, index: int, target: TargetPlan
    ) -> Generator[QuantizeProgress, None, QuantizedFile]:
        request = self.plan.request
        if self._cancelled.is_set():
            raise QuantizeCancelled("Quantizing was cancelled.")
        target.output.parent.mkdir(parents=True, exist_ok=True)
        # Re-checked per target: other programs (or earlier targets) may have used the space.
        _check_disk(target.predicted_size or self.plan.source.file_size,
                    free_disk_bytes(target.output.parent), target.output.parent)
        part = part_path(target.output)
        self._worker = WorkerProcess({
            "cmd": "quantize", "source": str(request.source), "dest": str(part),
            "type": target.quant.name, "ftype": target.quant.ftype, "threads": request.threads,
            "imatrix": str(request.imatrix) if request.imatrix else None,
            "allow_requantize": request.allow_requantize,
        }, self._cancelled)
        started = time.perf_counter()
        count = len(self.plan.targets)
        try:
            # closing(): a caller that stops iterating (a closed window) kills the child first.
            with closing(self._worker.messages()) as messages:
                for message in messages:
                    if "done" in message:
                        log.info("llama.cpp quantized to %s in %.2f s", target.quant.name,
                                 message.get("seconds", 0.0))
                    if "tensor" in message:
                        yield QuantizeProgress(index, count, target.quant.name,
                                               int(message["tensor"]), int(message["of"]))
        except WorkerCancelled:
            part.unlink(missing_ok=True)
            raise QuantizeCancelled("Quantizing was cancelled.") from None
        except WorkerError as exc:
            message = self._explain(target, str(exc))  # before the .part frees its space
            part.unlink(missing_ok=True)
            raise QuantizeError(message) from exc
        except BaseException:
            # GeneratorExit (the caller stopped) or anything unexpected: no half-written file.
            part.unlink(missing_ok=True)
            raise
        try:
            # llama.cpp reports success even when a full disk cut its writes short, so the
            # file itself must say it is whole.
            read_model_info(part)
            part.replace(target.output)
        except (GGUFError, OSError) as exc:
            message = self._explain(target, f"the output is not whole ({exc})")
            part.unlink(missing_ok=True)
            raise QuantizeError(message) from exc
        seconds = time.perf_counter() - started
        log.info("quantized %s to %s in %.1f s", request.source, target.output, seconds)
        return QuantizedFile(target.quant.name, target.output, target.output.stat().st_size,
                             seconds)

    def _explain(self, target: TargetPlan, message: str) -> str:
        folder = target.output.parent
        free = free_disk_bytes(folder)
        if free < DISK_MARGIN:
            return (f"The disk holding {folder} is full ({human_bytes(free)} free), so the "
                    f"{target.quant.name} output could not be written. Nothing was kept.")
        return f"Quantizing to {target.quant.name} failed: {message}"
