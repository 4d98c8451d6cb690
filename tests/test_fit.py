"""The memory-fit estimate: hand-computed VRAM figures for 0/1/2 fake GPUs, and honesty checks
that load real models in fresh processes and compare the estimate with measured RSS growth."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llama_cpp
import pytest
from decode_support import complete

from app.engine.gguf.info import read_model_info, read_model_shape
from app.engine.serving.pool import ModelPool
from app.engine.sizing.fit_verdict import quick_fit
from app.engine.sizing.hardware import GpuInfo
from app.engine.sizing.memory_estimate import FitEstimate, auto_gpu_layers, estimate_memory
from app.engine.types import LoadSettings, ModelInfo, ModelShape, Sampling
from app.testing.tiny_gguf import build_tiny_model

MIB, GIB = 1 << 20, 1 << 30


def _info() -> ModelInfo:
    # 4 blocks of 100 MiB; 60 MiB outside them: a 40 MiB embedding and a 20 MiB output head.
    return ModelInfo(
        path="m.gguf", file_size=460 * MIB, architecture="llama", name="m", parameter_count=0,
        file_type="F16", context_length=4096, block_count=4, embedding_length=1024,
        head_count=8, head_count_kv=8, has_chat_template=False,
        layer_tensor_bytes=[100 * MIB] * 4, other_tensor_bytes=60 * MIB,
    )


SHAPE = ModelShape(feed_forward_length=4096, vocab_size=32000, output_tensor_bytes=20 * MIB)


def _est(settings: LoadSettings, gpus: list[GpuInfo], ram_available: int) -> FitEstimate:
    return estimate_memory(_info(), settings, gpus, ram_available, shape=SHAPE, sequences=1)


def _gpu(index: int, free: int) -> GpuInfo:
    return GpuInfo(index, f"GPU {index}", "550", vram_total=free, vram_used=0, vram_free=free)


SETTINGS = LoadSettings(n_ctx=1024, n_batch=512)
# By hand, for _info() at n_ctx 1024, n_ubatch 512, F16 KV, no flash attention:
KV_LAYER = 1024 * 8 * (128 + 128) * 2  # n_ctx × kv heads × (K + V head dims) × 2 bytes = 4 MiB
ATTN = 512 * 4 * (1024 * (8 + 1) + 4 * 1024 + 2 * 1024)  # 30 MiB
FFN = 512 * 4 * (3 * 4096 + 4 * 1024)  # 32 MiB: the larger, so it is the graph's peak
LOGITS = 32000 * 4
GRAPH = max(ATTN, FFN) + LOGITS
GPU_RUNTIME = 300 * MIB


def test_kv_cache_and_no_gpu() -> None:
    est = _est(SETTINGS, [], ram_available=64 * GIB)
    assert est.kv_bytes == 4 * KV_LAYER == 16 * MIB
    assert est.vram_bytes == [] and est.layers_on_gpu == 0 and est.verdict == "CPU only"
    score_copy = 1024 * 512 * 8 * 2
    overhead = 4 * MIB + 32000 * 176 + LOGITS
    assert est.ram_bytes == 460 * MIB + 16 * MIB + GRAPH + score_copy + overhead
    assert dict(est.breakdown())["RAM total"] == est.ram_bytes


def test_a_chat_model_counts_a_kv_cache_per_parallel_slot_and_the_windows_own() -> None:
    one = _est(SETTINGS, [], ram_available=64 * GIB)
    served = estimate_memory(_info(), LoadSettings(n_ctx=1024, n_batch=512, parallel=3), [],
                             64 * GIB, shape=SHAPE)
    assert served.kv_bytes == 4 * one.kv_bytes
    assert served.ram_bytes - one.ram_bytes == 3 * one.kv_bytes + 3 * LOGITS * 2


def test_one_gpu_full_and_partial_offload() -> None:
    gpus = [_gpu(0, 20 * GIB)]
    full = _est(LoadSettings(n_ctx=1024, n_gpu_layers=-1), gpus, 64 * GIB)
    # 4 blocks with their KV, the output head, one compute graph and the CUDA runtime.
    assert full.vram_bytes == [4 * (100 * MIB + KV_LAYER) + 20 * MIB + GRAPH + GPU_RUNTIME]
    assert full.layers_on_gpu == 5 and full.verdict == "full offload"
    assert full.weights_ram == 40 * MIB  # only the token embedding stays on the CPU
    part = _est(LoadSettings(n_ctx=1024, n_gpu_layers=2), gpus, 64 * GIB)
    assert part.vram_bytes == [2 * (100 * MIB + KV_LAYER) + GRAPH + GPU_RUNTIME]
    assert part.weights_ram == 2 * 100 * MIB + 60 * MIB and part.verdict == "partial offload"
    rows = dict(part.breakdown())
    assert rows["VRAM total"] == sum(part.vram_bytes) and rows["GPU runtime"] == GPU_RUNTIME


def test_two_gpus_split_by_free_memory() -> None:
    gpus = [_gpu(0, 8 * GIB), _gpu(1, 8 * GIB)]
    est = _est(LoadSettings(n_ctx=1024, n_gpu_layers=5), gpus, 64 * GIB)
    # llama.cpp places layer i on the GPU whose cumulative free share first exceeds i / 5:
    # blocks 0-2 (0, 0.2, 0.4) on GPU 0, block 3 (0.6) and the output (0.8) on GPU 1.
    assert est.vram_bytes == [
        3 * (100 * MIB + KV_LAYER) + GRAPH + GPU_RUNTIME,
        (100 * MIB + KV_LAYER) + 20 * MIB + GRAPH + GPU_RUNTIME,
    ]


def test_verdict_does_not_fit() -> None:
    assert _est(SETTINGS, [], ram_available=100 * MIB).verdict == (
        "does not fit")
    small = [_gpu(0, 500 * MIB)]
    est = _est(LoadSettings(n_ctx=1024, n_gpu_layers=5), small, 64 * GIB)
    assert est.verdict == "does not fit"


def test_auto_gpu_layers_keeps_headroom() -> None:
    gpus = [_gpu(0, GIB)]
    # Within 1 GiB - 512 MiB: one block (104 MiB + 332 MiB graph and runtime) fits, two do not.
    assert auto_gpu_layers(_info(), SETTINGS, gpus, headroom=512 * MIB, shape=SHAPE) == 1
    assert auto_gpu_layers(_info(), SETTINGS, [_gpu(0, 24 * GIB)], shape=SHAPE) == 5
    assert auto_gpu_layers(_info(), SETTINGS, [], shape=SHAPE) == 0


def test_quantized_kv_cache_is_smaller() -> None:
    f16 = _est(SETTINGS, [], 64 * GIB).kv_bytes
    q8 = _est(LoadSettings(n_ctx=1024, kv_cache_type="q8_0"), [], 64 * GIB)
    q4 = _est(LoadSettings(n_ctx=1024, kv_cache_type="q4_0"), [], 64 * GIB)
    assert (q8.kv_bytes, q4.kv_bytes) == (f16 * 34 // 64, f16 * 18 // 64)


def test_this_build_keeps_a_full_size_swa_cache() -> None:
    # fit.py gives sliding-window layers no KV discount because of this default.
    assert llama_cpp.llama_context_default_params().swa_full


def test_header_fields_for_the_estimate(starter_model: Path) -> None:
    shape = read_model_shape(starter_model)
    assert (shape.key_length, shape.value_length) == (256, 256)
    assert (shape.feed_forward_length, shape.vocab_size) == (2048, 262144)
    # Gemma ties its output head to the embedding.
    assert shape.output_tensor_bytes == read_model_info(starter_model).other_tensor_bytes


# -- honesty: estimate vs measured RSS growth ---------------------------------------------------

_MEASURE = r"""
import dataclasses, gc, json, sys
import psutil
from app.engine.serving.jobs import SequenceJob
from app.engine.serving.loaded_model import load_llm
from app.engine.types import LoadSettings, Sampling
path, settings = sys.argv[1], LoadSettings(**json.loads(sys.argv[2]))
settings = dataclasses.replace(settings, parallel=0)  # one sequence, as the estimate is asked
gc.collect()
proc = psutil.Process()
before = proc.memory_info().rss
model = load_llm("measured", path, settings, jit=False, ttl_s=None, memory_bytes=0)
# A prompt that fills the context makes llama.cpp touch its whole compute buffer and KV cache,
# so the measurement is the peak the estimate promises, not a lucky short-prompt figure.
words = model.text_tokens("hello world the model " * settings.n_ctx)[: settings.n_ctx - 16]
handle = model.submit(SequenceJob(words, Sampling(max_tokens=8, temperature=0),
                                  interactive=True), lambda event: None)
assert handle.wait(120)
print(json.dumps({"growth": proc.memory_info().rss - before}))
"""

_TINY = {"256x4": (256, 4), "512x8": (512, 8)}
CASES = [
    ("256x4", 512, "f16"), ("256x4", 2048, "f16"),
    ("512x8", 512, "f16"), ("512x8", 2048, "f16"), ("512x8", 2048, "q8_0"),
    ("starter", 512, "f16"), ("starter", 2048, "f16"), ("starter", 2048, "q4_0"),
    ("starter-q8_0", 1024, "f16"),
]


def _requantize(source: Path, target: Path, ftype: int) -> Path:
    """A quantized variant of a real model, made with llama.cpp's own quantizer."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 2
    assert llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(),
                                          params) == 0
    return target


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, starter_model: Path) -> dict:
    folder = tmp_path_factory.mktemp("fit-models")
    import llama_cpp

    paths = {
        "starter": starter_model,
        "starter-q8_0": _requantize(starter_model, folder / "starter-q8_0.gguf",
                                    llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0),
    }
    for name, (n_embd, n_layer) in _TINY.items():
        paths[name] = build_tiny_model(
            folder / f"{name}.gguf", dtype="f16", n_embd=n_embd, n_layer=n_layer, n_head=8,
            n_head_kv=4, n_ff=4 * n_embd, n_ctx_train=8192)

    def run(case: tuple[str, int, str]) -> tuple[int, int]:
        name, n_ctx, kv = case
        settings = LoadSettings(n_ctx=n_ctx, n_threads=4, kv_cache_type=kv)
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(paths[name]), json.dumps(settings.to_dict())],
            capture_output=True, text=True, timeout=120, check=True)
        growth = json.loads(out.stdout.strip().splitlines()[-1])["growth"]
        estimate = estimate_memory(read_model_info(paths[name]), settings, [], 1 << 62,
                                   sequences=1)  # as the measured Runtime loads it
        return estimate.ram_bytes, growth

    # Separate processes measure independently, so they may run side by side.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_estimate_matches_measured_rss(measured: dict, case: tuple[str, int, str]) -> None:
    estimate, growth = measured[case]
    ratio = estimate / growth
    print(f"{case}: estimate {estimate / MIB:.1f} MiB, measured {growth / MIB:.1f} MiB, "
          f"ratio {ratio:.3f}")
    assert 0.85 <= ratio <= 1.15, (
        f"estimate {estimate / MIB:.1f} MiB vs measured {growth / MIB:.1f} MiB")


def test_cli_info_prints_the_estimate(tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    from app.cli import main

    assert main(["info", str(tiny_model), "--ctx", "256"]) == 0
    out = capsys.readouterr().out
    assert "Memory at 256 tokens of context (f16 KV cache):" in out
    assert "CPU only:      RAM" in out and "Full offload:  VRAM" in out
    assert main(["info", str(tiny_model), "--ctx", "256", "--kv-type", "q8_0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["memory_estimate"]["n_ctx"] == 256
    assert data["memory_estimate"]["ram_bytes_cpu_only"] > 0


def test_runtime_loads_a_quantized_kv_cache(tiny_model: Path, tmp_path: Path) -> None:
    from app.engine.inference.runtime import LoadError, Runtime

    # Quantized K rows need a head size that divides by the 32-element block.
    model = build_tiny_model(tmp_path / "m.gguf", n_embd=128, n_head=4, n_head_kv=2)
    pool = ModelPool()
    try:  # q4_0 turns on flash attention
        loaded = pool.load("q4", model, LoadSettings(n_ctx=256, kv_cache_type="q4_0", parallel=1))
        reply = complete(loaded, loaded.text_tokens("hello world"),
                         Sampling(max_tokens=4, temperature=0))
        assert reply.finished().stats.generated_tokens >= 1
    finally:
        pool.shutdown()
    with pytest.raises(LoadError, match="Unknown KV-cache type"):
        Runtime(tiny_model, LoadSettings(n_ctx=256, kv_cache_type="q2"))
    with pytest.raises(LoadError, match="does not divide"):  # head size 16: a clear message
        Runtime(tiny_model, LoadSettings(n_ctx=256, kv_cache_type="q4_0"))


def test_quick_fit_rule() -> None:
    gib = 1 << 30
    assert quick_fit(gib, ram_available=8 * gib).verdict == "CPU only"
    assert quick_fit(20 * gib, ram_available=8 * gib).verdict == "does not fit"
