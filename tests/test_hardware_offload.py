"""`vram_used` and `offload_gpus` with NVML replaced by the fakes of test_hardware."""

from __future__ import annotations

import threading

import llama_cpp
import psutil
import pytest
from test_hardware import GIB, FakeNVML

from app.engine.sizing import hardware
from app.engine.sizing.hardware import GpuInfo, offload_gpus, reset_offload_gpus, vram_used


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch: pytest.MonkeyPatch):
    reset_offload_gpus()
    monkeypatch.setattr(hardware, "_vram_handles", None)
    monkeypatch.setattr(hardware, "_vram_nvml", None)
    yield
    reset_offload_gpus()


def test_vram_used_sums_every_gpu():
    nvml = FakeNVML([("A", 8 * GIB, GIB), ("B", 16 * GIB, 3 * GIB)])
    assert vram_used(nvml=nvml) == 4 * GIB
    assert nvml.shutdowns == 1


def test_vram_used_is_none_without_gpus_or_when_nvml_fails():
    assert vram_used(nvml=FakeNVML([])) is None
    assert vram_used(nvml=FakeNVML([("A", GIB, 0)], fail_on="nvmlInit")) is None
    assert vram_used(nvml=FakeNVML([("A", GIB, 0)], fail_on="nvmlDeviceGetMemoryInfo")) is None
    listing = FakeNVML([("A", GIB, 0)], fail_on="nvmlDeviceGetCount")
    assert vram_used(nvml=listing) is None and listing.shutdowns == 1


def test_vram_used_keeps_nvml_open_and_leaves_the_cpu_baseline_alone(
    monkeypatch: pytest.MonkeyPatch,
):
    nvml = FakeNVML([("A", 8 * GIB, 2 * GIB)])
    inits = []
    real_init = nvml.nvmlInit
    monkeypatch.setattr(nvml, "nvmlInit", lambda: (inits.append(1), real_init())[1])
    monkeypatch.setattr(hardware, "_load_nvml", lambda: nvml)

    def no_cpu_reading(*_a, **_k):
        raise AssertionError("vram_used read the CPU and reset its percent baseline")

    monkeypatch.setattr(psutil, "cpu_percent", no_cpu_reading)
    assert vram_used() == 2 * GIB
    nvml.gpus[0] = ("A", 8 * GIB, 5 * GIB)
    assert vram_used() == 5 * GIB
    assert inits == [1] and nvml.shutdowns == 0


def test_vram_used_without_nvml_package(monkeypatch: pytest.MonkeyPatch):
    def missing():
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(hardware, "_load_nvml", missing)
    assert vram_used() is None


def _fake_machine(monkeypatch: pytest.MonkeyPatch, nvml: FakeNVML, offload: bool) -> list[int]:
    probes: list[int] = []

    def load():
        probes.append(1)
        return nvml

    monkeypatch.setattr(hardware, "_load_nvml", load)
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: offload)
    return probes


def test_offload_gpus_are_the_nvml_gpus_when_llama_cpp_can_offload(
    monkeypatch: pytest.MonkeyPatch,
):
    probes = _fake_machine(monkeypatch, FakeNVML([("RTX 4090", 24 * GIB, 2 * GIB)]), True)
    gpus = offload_gpus()
    assert gpus == [GpuInfo(0, "RTX 4090", "550.54", 24 * GIB, 2 * GIB, 22 * GIB, 37.0, 61.0)]
    gpus[0].vram_free = 0  # a caller's change does not leak into the cache
    assert offload_gpus()[0].vram_free == 22 * GIB
    assert probes == [1]  # probed once


def test_offload_gpus_is_empty_for_a_cpu_only_build(monkeypatch: pytest.MonkeyPatch):
    _fake_machine(monkeypatch, FakeNVML([("RTX 4090", 24 * GIB, 0)]), False)
    assert offload_gpus() == []


def test_reset_probes_again(monkeypatch: pytest.MonkeyPatch):
    probes = _fake_machine(monkeypatch, FakeNVML([]), True)
    assert offload_gpus() == []
    reset_offload_gpus()
    _fake_machine(monkeypatch, FakeNVML([("A", 8 * GIB, 0)]), True)
    assert [g.name for g in offload_gpus()] == ["A"]
    assert probes == [1]


def test_offload_gpus_probes_once_across_threads(monkeypatch: pytest.MonkeyPatch):
    probes = _fake_machine(monkeypatch, FakeNVML([("A", 8 * GIB, 0)]), True)
    results: list[list[GpuInfo]] = []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        results.append(offload_gpus())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert probes == [1]
    assert all([g.name for g in r] == ["A"] for r in results) and len(results) == 8
