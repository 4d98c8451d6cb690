"""The quality report: what each quantization cost in perplexity and gained in size and speed.

Every model (the source and each output) is measured in its own child process, like
quantizing, so Cancel stops at once and a llama.cpp crash only marks that row as failed.
Perplexity follows llama.cpp's `llama-perplexity` (non-overlapping windows of n_ctx tokens,
the second half of each window scored) on the sample text shipped in `resources/samples/`.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.quantize.samples import DEFAULT_SAMPLE
from app.engine.quantize.worker_process import WorkerCancelled, WorkerError, WorkerProcess
from app.engine.sizing.hardware import GpuInfo
from app.engine.sizing.memory_estimate import auto_gpu_layers
from app.engine.types import LoadSettings, ModelInfo
from app.engine.units import human_bytes

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 512  # the window size llama.cpp's published perplexity tables use


class QualityCancelled(RuntimeError):
    """The user stopped the measurements."""


@dataclass(frozen=True)
class QualityRow:
    label: str  # "F16 (source)" or the output's type
    path: str
    file_type: str
    file_size: int
    bits_per_weight: float
    perplexity: float | None = None
    ppl_stderr: float | None = None
    prompt_tps: float | None = None
    gen_tps: float | None = None
    error: str | None = None  # why this model could not be measured

    @property
    def is_source(self) -> bool:
        return self.label.endswith("(source)")


@dataclass(frozen=True)
class QualityReport:
    source_path: str
    sample: str
    n_ctx: int
    n_chunks: int
    rows: tuple[QualityRow, ...] = field(default_factory=tuple)
    gpu_layers: int = 0  # layers the measurements offloaded to a GPU; 0: speeds are CPU only

    @property
    def speed_basis(self) -> str:
        """What the speeds were measured on, for a report's readers."""
        if self.gpu_layers <= 0:
            return "on this machine's CPU"
        return f"on this machine with {self.gpu_layers} layers on the GPU"

    @property
    def source_row(self) -> QualityRow | None:
        return next((r for r in self.rows if r.is_source), None)


@dataclass(frozen=True)
class EvalProgress:
    index: int  # which model, from 0
    count: int
    label: str
    stage: str  # "loading" | "perplexity" | "speed"
    step: int
    steps: int

    @property
    def fraction(self) -> float:
        # Perplexity is most of each model's time; speed is the last tenth.
        within = {"loading": 0.0, "perplexity": 0.9 * self.step / max(self.steps, 1),
                  "speed": 0.9}.get(self.stage, 0.0)
        return (self.index + within) / self.count if self.count else 1.0

    def describe(self) -> str:
        """``Measuring Q8_0: perplexity window 3 of 7``, for a status line."""
        if self.stage == "perplexity":
            return f"Measuring {self.label}: perplexity window {self.step} of {self.steps}"
        if self.stage == "speed":
            return f"Measuring {self.label}: speed"
        return f"Measuring {self.label}: loading ({self.index + 1} of {self.count})"


def eval_gpu_layers(source: ModelInfo, gpus: list[GpuInfo]) -> int:
    """Layers to offload while measuring: as many as fit, like a chat would load the model, so
    the speeds say what using it will be like. The source is the largest model measured, so
    what fits for it fits for its quantizations."""
    if not gpus:
        return 0
    return auto_gpu_layers(source, LoadSettings(n_ctx=DEFAULT_N_CTX), gpus)


def bits_per_weight(path: str | Path) -> tuple[str, int, float]:
    """(file type, file size, bits per weight of the tensor data) from the file's header."""
    info = read_model_info(path)
    tensor_bytes = sum(info.layer_tensor_bytes) + info.other_tensor_bytes
    bpw = tensor_bytes * 8 / info.parameter_count if info.parameter_count else 0.0
    return info.file_type, info.file_size, bpw


class EvaluateJob:
    """Measures each model in turn; `cancel` may be called from any thread."""

    def __init__(
        self,
        source: Path,
        outputs: Sequence[tuple[str, Path]],  # (label, path) per quantized file
        *,
        n_ctx: int = DEFAULT_N_CTX,
        max_chunks: int | None = None,
        threads: int = 0,
        sample: str = DEFAULT_SAMPLE,
        gpu_layers: int = 0,
    ) -> None:
        self.source = Path(source)
        self.outputs = list(outputs)
        self.n_ctx = n_ctx
        self.max_chunks = max_chunks
        self.threads = threads
        self.sample = sample
        self.gpu_layers = gpu_layers
        self._offloaded = 0  # what the workers report they could offload
        self._worker: WorkerProcess | None = None
        self._cancelled = threading.Event()  # shared with every worker this job starts

    def cancel(self) -> None:
        self._cancelled.set()
        if self._worker is not None:
            self._worker.cancel()

    def run(self) -> Generator[EvalProgress, None, QualityReport]:
        models: list[tuple[str, Path]] = []
        try:
            source_type = read_model_info(self.source).file_type
            models.append((f"{source_type} (source)", self.source))
        except (GGUFError, OSError) as exc:
            log.warning("source %s not measurable: %s", self.source, exc)
        models += self.outputs
        rows: list[QualityRow] = []
        chunks = 0
        for index, (label, path) in enumerate(models):
            if self._cancelled.is_set():
                raise QualityCancelled("Measuring was cancelled.")
            yield EvalProgress(index, len(models), label, "loading", 0, 1)
            row, n = yield from self._measure(index, len(models), label, path)
            chunks = max(chunks, n)
            rows.append(row)
        return QualityReport(str(self.source), self.sample, self.n_ctx, chunks, tuple(rows),
                             self._offloaded)

    def _measure(
        self, index: int, count: int, label: str, path: Path
    ) -> Generator[EvalProgress, None, tuple[QualityRow, int]]:
        try:
            file_type, size, bpw = bits_per_weight(path)
        except (GGUFError, OSError) as exc:
            return QualityRow(label, str(path), "?", 0, 0.0, error=str(exc)), 0
        self._worker = WorkerProcess({
            "cmd": "evaluate", "model": str(path), "n_ctx": self.n_ctx,
            "max_chunks": self.max_chunks, "threads": self.threads, "sample": self.sample,
            "gpu_layers": self.gpu_layers,
        }, self._cancelled)
        result: dict[str, float] = {}
        try:
            # closing(): a caller that stops iterating stops the child at once.
            with closing(self._worker.messages()) as messages:
                for message in messages:
                    if "result" in message:
                        result = message["result"]
                    elif "stage" in message:
                        yield EvalProgress(index, count, label, message["stage"],
                                           int(message["step"]), int(message["of"]))
        except WorkerCancelled:
            raise QualityCancelled("Measuring was cancelled.") from None
        except WorkerError as exc:
            return QualityRow(label, str(path), file_type, size, bpw, error=str(exc)), 0
        self._offloaded = max(self._offloaded, int(result.get("gpu_layers", 0)))
        return QualityRow(
            label, str(path), file_type, size, bpw,
            perplexity=result.get("perplexity"), ppl_stderr=result.get("stderr"),
            prompt_tps=result.get("prompt_tps"), gen_tps=result.get("gen_tps"),
        ), int(result.get("n_chunks", 0))


# -- export -------------------------------------------------------------------------------------
CSV_FIELDS = ["label", "file_type", "file_size", "bits_per_weight", "perplexity", "ppl_stderr",
              "ppl_change_pct", "prompt_tps", "gen_tps", "gpu_layers", "path", "error"]


def ppl_change(row: QualityRow, source: QualityRow | None) -> float | None:
    """Perplexity change against the source, in percent (positive = worse)."""
    if source is None or row is source or not source.perplexity or row.perplexity is None:
        return None
    return (row.perplexity / source.perplexity - 1.0) * 100.0


def to_csv(report: QualityReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        data = {k: v for k, v in asdict(row).items() if k in CSV_FIELDS}
        data["ppl_change_pct"] = ppl_change(row, report.source_row)
        data["gpu_layers"] = report.gpu_layers if row.error is None else None
        writer.writerow({k: "" if v is None else v for k, v in data.items()})
    return out.getvalue()


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def to_markdown(report: QualityReport) -> str:
    source = report.source_row
    lines = [
        f"# Quantization report: {Path(report.source_path).name}",
        "",
        f"Perplexity on `{report.sample}` ({report.n_chunks} windows of {report.n_ctx} tokens, "
        "scored as llama.cpp's llama-perplexity does; lower is better). Speeds are tokens per "
        f"second {report.speed_basis}.",
        "",
        "| Model | Type | Size | Bits/weight | Perplexity | vs source | Prompt t/s | "
        "Generation t/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report.rows:
        if row.error:
            lines.append(f"| {row.label} | {row.file_type} | {human_bytes(row.file_size)} | "
                         f"{row.bits_per_weight:.2f} | failed: {row.error} | | | |")
            continue
        ppl = _fmt(row.perplexity, ".3f")
        if row.ppl_stderr is not None and row.perplexity is not None:
            ppl += f" ± {row.ppl_stderr:.3f}"
        change = ppl_change(row, source)
        lines.append(
            f"| {row.label} | {row.file_type} | {human_bytes(row.file_size)} | "
            f"{row.bits_per_weight:.2f} | {ppl} | "
            f"{'—' if change is None else f'{change:+.1f}%'} | "
            f"{_fmt(row.prompt_tps, '.1f')} | {_fmt(row.gen_tps, '.1f')} |"
        )
    return "\n".join(lines) + "\n"
