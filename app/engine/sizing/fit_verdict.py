"""Fit verdicts for GGUF files that are not loaded (or not even on disk) yet.

`estimated_fit` runs the memory estimator (`app.engine.sizing.memory_estimate.estimate_memory`)
on a file's header: one fetched from the Hub with a Range request (Discover), or a
quantization's predicted header (the quantize dialog and `hearth quantize`). When no header is
at hand, `quick_fit` is the fallback: the weights plus a margin for the KV cache and compute
buffers against free VRAM and available RAM, from the file size alone. Both speak the
estimator's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from app.engine.sizing.hardware import GpuInfo
from app.engine.sizing.memory_estimate import Verdict, auto_gpu_layers, estimate_memory
from app.engine.types import LoadSettings, ModelInfo, ModelShape
from app.engine.units import human_bytes

# Room a default 4096-token context and llama.cpp's buffers take beyond the weights.
_MARGIN_FRACTION = 0.15
_MARGIN_FLOOR = 256 * 1024 * 1024
FIT_CTX = 8192  # the context the estimate assumes (or the model's own, if smaller)
TOO_LARGE = "does not fit"


@dataclass(frozen=True)
class FitBadge:
    verdict: Verdict  # "full offload" | "partial offload" | "CPU only" | "does not fit"
    need: int
    ram_available: int
    vram_free: int
    note: str = ""  # the estimator's figures; empty for a rough estimate
    projector_bytes: int = 0  # a vision projector loaded with the model, counted in ``need``

    @property
    def ok(self) -> bool:
        return self.verdict != TOO_LARGE

    @property
    def detail(self) -> str:
        if self.note:
            return self.note
        vram = f", {human_bytes(self.vram_free)} VRAM free" if self.vram_free else ", no GPU"
        projector = (f" with the vision projector ({human_bytes(self.projector_bytes)})"
                     if self.projector_bytes else "")
        return (f"Rough estimate from the file size: needs about {human_bytes(self.need)}"
                f"{projector}; "
                f"this machine has {human_bytes(self.ram_available)} RAM available{vram}.")


def quick_fit(size: int, ram_available: int | None = None,
              gpus: list[GpuInfo] | None = None, projector_bytes: int = 0) -> FitBadge:
    """Size-vs-free-memory verdict for a file of ``size`` bytes (see the module doc), loaded
    with a vision projector of ``projector_bytes`` (0: none)."""
    if ram_available is None:
        ram_available = psutil.virtual_memory().available
    vram = sum(g.vram_free for g in gpus or [])
    need = size + max(_MARGIN_FLOOR, int(size * _MARGIN_FRACTION)) + projector_bytes
    if vram and need <= vram:
        verdict = "full offload"
    elif vram and need <= vram + ram_available:
        verdict = "partial offload"
    elif need <= ram_available:
        verdict = "CPU only"
    else:
        verdict = TOO_LARGE
    return FitBadge(verdict, need, ram_available, vram, projector_bytes=projector_bytes)


def estimated_fit(info: ModelInfo, shape: ModelShape, ram_available: int,
                  gpus: list[GpuInfo], projector_bytes: int = 0) -> FitBadge:
    """The memory estimator's verdict for a model not loaded yet: at ``FIT_CTX`` tokens of
    context (or the model's own, if smaller), with as many layers on the GPUs as fit beside
    a vision projector of ``projector_bytes`` (0: none)."""
    settings = LoadSettings(n_ctx=min(FIT_CTX, info.context_length or FIT_CTX))
    layers = (auto_gpu_layers(info, settings, gpus, shape=shape, projector_bytes=projector_bytes)
              if gpus else 0)
    settings = LoadSettings(**{**settings.to_dict(), "n_gpu_layers": layers})
    est = estimate_memory(info, settings, gpus, ram_available=ram_available, shape=shape,
                          projector_bytes=projector_bytes)
    vram_need, vram_free = sum(est.vram_bytes), sum(est.vram_free)
    beside = " with the vision projector" if projector_bytes else ""
    lines = [f"Estimated at {est.n_ctx:,} tokens of context{beside}: needs RAM "
             f"{human_bytes(est.ram_bytes)}"
             + (f", VRAM {human_bytes(vram_need)} ({est.layers_on_gpu} of "
                f"{est.max_gpu_layers} layers on the GPU)" if gpus else "") + "."]
    lines += [f"  {label}: {human_bytes(value)}" for label, value in est.breakdown()]
    vram = f", {human_bytes(vram_free)} VRAM free" if gpus else ", no GPU"
    lines.append(f"This machine has {human_bytes(ram_available)} RAM available{vram}.")
    return FitBadge(est.verdict, est.ram_bytes + vram_need, ram_available, vram_free,
                    "\n".join(lines), projector_bytes)
