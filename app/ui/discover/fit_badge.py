"""A fit badge for a GGUF file that is not on disk yet, from its size alone.

The memory estimator (`app.engine.fit.estimate_memory`) needs the file's GGUF header, which a
Hub listing does not give, so until the header can be fetched with a Range request this is a
deliberately simple rule: the weights plus a margin for the KV cache and compute buffers against
free VRAM and available RAM. Replace `quick_fit` and keep `FitBadge` for the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from app.engine.gguf_info import human_bytes
from app.engine.hardware import GpuInfo

# Room a default 4096-token context and llama.cpp's buffers take beyond the weights.
_MARGIN_FRACTION = 0.15
_MARGIN_FLOOR = 256 * 1024 * 1024


@dataclass(frozen=True)
class FitBadge:
    verdict: str  # "full GPU offload" | "partial offload" | "CPU only" | "likely too large"
    need: int
    ram_available: int
    vram_free: int

    @property
    def ok(self) -> bool:
        return self.verdict != "likely too large"

    @property
    def detail(self) -> str:
        vram = f", {human_bytes(self.vram_free)} VRAM free" if self.vram_free else ", no GPU"
        return (f"Rough estimate from the file size: needs about {human_bytes(self.need)}; "
                f"this machine has {human_bytes(self.ram_available)} RAM available{vram}.")


def quick_fit(size: int, ram_available: int | None = None,
              gpus: list[GpuInfo] | None = None) -> FitBadge:
    """Size-vs-free-memory verdict for a file of ``size`` bytes (see the module doc)."""
    if ram_available is None:
        ram_available = psutil.virtual_memory().available
    vram = sum(g.vram_free for g in gpus or [])
    need = size + max(_MARGIN_FLOOR, int(size * _MARGIN_FRACTION))
    if vram and need <= vram:
        verdict = "full GPU offload"
    elif vram and need <= vram + ram_available:
        verdict = "partial offload"
    elif need <= ram_available:
        verdict = "CPU only"
    else:
        verdict = "likely too large"
    return FitBadge(verdict, need, ram_available, vram)
