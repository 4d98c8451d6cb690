"""How much RAM and VRAM a model needs under given load settings, from its GGUF header alone.

The model mirrors what this llama.cpp build allocates (see docs/memory-estimate.md for the
method and the measurements behind each constant):

- weights: the GGUF tensor bytes. With mmap they still count as RAM, since every page is read
  during use. Offloading ``n`` layers puts the *last* ``n`` blocks on the GPU; a value above
  ``block_count`` also moves the output layer. The token embedding always stays on the CPU.
- KV cache: ``2 × layers × n_ctx × n_head_kv × head_dim × bytes(kv type)``. This build keeps a
  full-size cache for sliding-window layers (it logs "using full-size SWA cache"), so SWA layers
  get no discount here.
- compute: llama.cpp reserves the graph's peak, the larger of the attention step
  ``n_ubatch × 4 × (n_kv × (n_head + masks) + 4·n_embd + 2·q_dim)`` (flash attention never
  materialises the ``n_head`` score matrices, so ``n_head`` becomes 1 there) and the feed-forward
  step ``n_ubatch × 4 × (3·n_ff + 4·n_embd)``, plus one row of logits. Without flash attention
  the CPU backend also converts the softmaxed scores to F16: ``n_kv × n_ubatch × n_head × 2``.
- overhead: the vocabulary's in-memory tables (~176 bytes a token) and a few MiB of runtime.
- vision projector (mmproj): its file size. A projector file is almost all weights, which mtmd
  loads whole (on the first GPU when layers are offloaded, else in RAM); its compute buffer for
  one image is small beside them, so the file size is a fair estimate, not a measurement.
"""

from __future__ import annotations

import bisect
import functools
import os
from dataclasses import dataclass, field

import psutil

from app.engine.gguf.info import GGUFError, read_model_shape
from app.engine.sizing.hardware import GpuInfo
from app.engine.types import LoadSettings, ModelInfo, ModelShape

MIB = 1 << 20
KV_TYPE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}  # ggml block sizes per element
BASE_OVERHEAD = 4 * MIB  # measured on tiny models: runtime, threads, allocator slack
VOCAB_BYTES_PER_TOKEN = 176  # measured on Gemma 3's 262k vocabulary (~44 MiB)
# CUDA context and cuBLAS workspace per GPU in use; a rule of thumb, not measured here (this
# build of llama.cpp has no GPU backend).
GPU_RUNTIME_OVERHEAD = 300 * MIB
N_OUTPUTS = 1  # output rows per sequence (Runtime sets cparams.n_outputs_max = sequences)
DEFAULT_HEADROOM = 512 * MIB

Verdict = str  # "full offload" | "partial offload" | "CPU only" | "does not fit"


@dataclass
class FitEstimate:
    ram_bytes: int
    vram_bytes: list[int]  # per GPU, in the order of the `gpus` argument
    weights_ram: int
    weights_vram: int
    kv_bytes: int  # the whole KV cache
    kv_vram_bytes: int  # the part of it that lives on GPUs
    compute_bytes: int  # compute buffers in RAM (incl. the CPU's F16 score copy)
    compute_vram_bytes: int  # compute buffers summed over GPUs
    overhead_bytes: int  # vocabulary tables, runtime, output buffer
    layers_on_gpu: int
    max_gpu_layers: int  # block_count + 1: every block plus the output layer
    n_ctx: int
    verdict: Verdict
    ram_available: int
    vram_free: list[int] = field(default_factory=list)
    projector_bytes: int = 0  # a vision projector's weights (already in the RAM or VRAM total)
    projector_on_gpu: bool = False

    def breakdown(self) -> list[tuple[str, int]]:
        """(label, bytes) rows that add up to the RAM and VRAM totals, for the UI."""
        rows = [
            ("Weights in RAM", self.weights_ram),
            ("KV cache in RAM", self.kv_bytes - self.kv_vram_bytes),
            ("Compute buffers in RAM", self.compute_bytes),
            ("Vocabulary and runtime", self.overhead_bytes),
        ]
        if self.projector_bytes and not self.projector_on_gpu:
            rows.append(("Vision projector in RAM", self.projector_bytes))
        rows.append(("RAM total", self.ram_bytes))
        if self.vram_bytes:
            projector_vram = self.projector_bytes if self.projector_on_gpu else 0
            gpu_overhead = sum(self.vram_bytes) - (
                self.weights_vram + self.kv_vram_bytes + self.compute_vram_bytes
                + projector_vram
            )
            rows += [
                ("Weights in VRAM", self.weights_vram),
                ("KV cache in VRAM", self.kv_vram_bytes),
                ("Compute buffers in VRAM", self.compute_vram_bytes),
            ]
            if projector_vram:
                rows.append(("Vision projector in VRAM", projector_vram))
            rows += [("GPU runtime", gpu_overhead), ("VRAM total", sum(self.vram_bytes))]
        return rows


def effective_ctx(info: ModelInfo, settings: LoadSettings) -> tuple[int, int]:
    """The (n_ctx, n_ubatch) Runtime will actually ask for; kept in step with runtime._load."""
    n_ctx = max(64, min(settings.n_ctx, info.context_length or settings.n_ctx))
    return n_ctx, max(32, min(settings.n_batch, n_ctx))


def _offload(n_gpu_layers: int, n_layer: int, n_gpus: int) -> int:
    if n_gpus == 0:
        return 0
    return n_layer + 1 if n_gpu_layers < 0 else min(n_gpu_layers, n_layer + 1)


def _device_of(index: int, first: int, n_offloaded: int, splits: list[float]) -> int:
    # llama.cpp splits offloaded layers across GPUs in proportion to their free memory.
    return min(bisect.bisect_right(splits, (index - first) / n_offloaded), len(splits) - 1)


@functools.lru_cache(maxsize=64)
def _cached_shape(path: str, _mtime: float, _size: int) -> ModelShape:
    return read_model_shape(path)


def shape_of(info: ModelInfo) -> ModelShape:
    """The file's ModelShape (cached per path and modification), or defaults if unreadable."""
    try:
        stat = os.stat(info.path)
        return _cached_shape(info.path, stat.st_mtime, stat.st_size)
    except (OSError, GGUFError):
        return ModelShape()


def estimate_memory(
    info: ModelInfo,
    settings: LoadSettings,
    gpus: list[GpuInfo],
    ram_available: int | None = None,
    shape: ModelShape | None = None,
    sequences: int | None = None,
    projector_bytes: int = 0,
) -> FitEstimate:
    """RAM and per-GPU VRAM needed to load ``info`` with ``settings``; see the module doc.

    ``shape`` defaults to what ``info.path``'s header says; pass one for a file not on disk.
    ``sequences``: sequences decoded together, each with a KV cache of ``settings.n_ctx``
    tokens and an output row; by default ``settings.parallel + 1``, as the serving pool loads a
    chat model (its parallel API slots and the window's own). ``projector_bytes``: the file
    size of the vision projector loaded with it (0: none).
    """
    if sequences is None:
        sequences = settings.parallel + 1
    if ram_available is None:
        ram_available = psutil.virtual_memory().available
    if shape is None:
        shape = shape_of(info)
    n_layer = info.block_count
    n_ctx, n_ubatch = effective_ctx(info, settings)
    offloaded = _offload(settings.n_gpu_layers, n_layer, len(gpus))
    first_gpu = n_layer - min(offloaded, n_layer)

    n_head = max(info.head_count, 1)
    k_len = shape.key_length or info.embedding_length // n_head
    v_len = shape.value_length or k_len
    kv_per_layer = int(
        sequences * n_ctx * info.head_count_kv * (k_len + v_len)
        * KV_TYPE_BYTES.get(settings.kv_cache_type, 2.0)
    )
    flash = settings.flash_attn or settings.kv_cache_type != "f16"
    masks = 2 if info.sliding_window else 1
    n_embd, q_dim = info.embedding_length, n_head * k_len
    attn = n_ubatch * 4 * (n_ctx * ((1 if flash else n_head) + masks) + 4 * n_embd + 2 * q_dim)
    # Without a feed-forward size in the header, assume the common 4 × n_embd.
    n_ff = shape.feed_forward_length or 4 * n_embd
    ffn = n_ubatch * 4 * (3 * n_ff + 4 * n_embd)
    logits = N_OUTPUTS * sequences * shape.vocab_size * 4
    graph = max(attn, ffn) + logits
    score_copy = 0 if flash else n_ctx * n_ubatch * n_head * 2

    free = [g.vram_free if g.vram_free > 0 else g.vram_total for g in gpus]
    total_free = sum(free) or 1
    splits = [sum(free[: i + 1]) / total_free for i in range(len(free))]
    vram = [0] * len(gpus)
    used_gpus: set[int] = set()
    layer_bytes = list(info.layer_tensor_bytes) + [0] * (n_layer - len(info.layer_tensor_bytes))
    weights_ram = weights_vram = kv_vram = 0
    for il in range(n_layer):
        if il >= first_gpu and offloaded:
            dev = _device_of(il, first_gpu, offloaded, splits)
            vram[dev] += layer_bytes[il] + kv_per_layer
            used_gpus.add(dev)
            weights_vram += layer_bytes[il]
            kv_vram += kv_per_layer
        else:
            weights_ram += layer_bytes[il]

    # A tied model has no output.weight: its output layer is a second copy of the embedding.
    output = shape.output_tensor_bytes
    tied = output >= info.other_tensor_bytes
    if offloaded > n_layer:
        dev = _device_of(n_layer, first_gpu, offloaded, splits)
        vram[dev] += output
        used_gpus.add(dev)
        weights_vram += output
        weights_ram += info.other_tensor_bytes if tied else info.other_tensor_bytes - output
    else:
        weights_ram += info.other_tensor_bytes

    compute_vram = 0
    for dev in used_gpus:
        vram[dev] += graph + GPU_RUNTIME_OVERHEAD
        compute_vram += graph
    all_on_gpu = offloaded > n_layer
    # Fully offloaded, the CPU only stages the input embeddings and the logits.
    compute_ram = n_ubatch * n_embd * 4 * 2 + logits if all_on_gpu else graph + score_copy
    overhead = BASE_OVERHEAD + shape.vocab_size * VOCAB_BYTES_PER_TOKEN + logits
    kv_total = kv_per_layer * n_layer
    ram = weights_ram + (kv_total - kv_vram) + compute_ram + overhead
    # mtmd puts the projector on the main GPU when the model offloads layers (use_gpu).
    projector_on_gpu = bool(projector_bytes and offloaded and vram)
    if projector_on_gpu:
        main = min(used_gpus) if used_gpus else 0
        vram[main] += projector_bytes
    else:
        ram += projector_bytes

    if ram > ram_available or any(v > f for v, f in zip(vram, free, strict=True)):
        verdict = "does not fit"
    elif offloaded == 0:
        verdict = "CPU only"
    elif all_on_gpu:
        verdict = "full offload"
    else:
        verdict = "partial offload"
    return FitEstimate(
        ram_bytes=ram, vram_bytes=vram, weights_ram=weights_ram, weights_vram=weights_vram,
        kv_bytes=kv_total, kv_vram_bytes=kv_vram, compute_bytes=compute_ram,
        compute_vram_bytes=compute_vram, overhead_bytes=overhead, layers_on_gpu=offloaded,
        max_gpu_layers=n_layer + 1, n_ctx=n_ctx, verdict=verdict, ram_available=ram_available,
        vram_free=free, projector_bytes=projector_bytes, projector_on_gpu=projector_on_gpu,
    )


def auto_gpu_layers(
    info: ModelInfo,
    settings: LoadSettings,
    gpus: list[GpuInfo],
    headroom: int = DEFAULT_HEADROOM,
    shape: ModelShape | None = None,
    projector_bytes: int = 0,
) -> int:
    """The largest ``n_gpu_layers`` whose estimate leaves ``headroom`` free on every GPU.
    ``projector_bytes``: the vision projector loaded with the model, which goes on the main GPU
    with the first offloaded layer, so it takes room the layers would otherwise get."""
    if not gpus:
        return 0
    shape = shape or shape_of(info)
    for n in range(info.block_count + 1, 0, -1):
        trial = LoadSettings(**{**settings.to_dict(), "n_gpu_layers": n})
        est = estimate_memory(info, trial, gpus, ram_available=1 << 62, shape=shape,
                              projector_bytes=projector_bytes)
        if all(v + headroom <= f for v, f in zip(est.vram_bytes, est.vram_free, strict=True)):
            return n
    return 0


def format_estimate(info: ModelInfo, settings: LoadSettings) -> str:
    """Lines for ``hearth info FILE --ctx N``: RAM on the CPU alone, and with every layer on a
    GPU large enough to take them (no GPU is probed, so the figures hold for any machine)."""
    from app.engine.units import human_bytes

    cpu = estimate_memory(info, LoadSettings(**{**settings.to_dict(), "n_gpu_layers": 0}), [])
    big_gpu = [GpuInfo(0, "any", vram_total=1 << 50, vram_free=1 << 50)]
    full = estimate_memory(
        info, LoadSettings(**{**settings.to_dict(), "n_gpu_layers": -1}), big_gpu)
    return "\n".join([
        f"Memory at {cpu.n_ctx:,} tokens of context ({settings.kv_cache_type} KV cache):",
        f"  CPU only:      RAM {human_bytes(cpu.ram_bytes)} "
        f"(weights {human_bytes(cpu.weights_ram)}, KV cache {human_bytes(cpu.kv_bytes)}, "
        f"compute {human_bytes(cpu.compute_bytes)})",
        f"  Full offload:  VRAM {human_bytes(sum(full.vram_bytes))}, "
        f"RAM {human_bytes(full.ram_bytes)}",
    ])
