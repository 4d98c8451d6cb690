"""The hardware probe with NVML replaced by fakes: 0, 1 and 2 GPUs, NVML missing or raising."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.engine.sizing import hardware
from app.engine.sizing.hardware import GpuInfo, probe_hardware, sample_usage, usage_samples

GIB = 1 << 30


class FakeNVMLError(Exception):
    pass


class FakeNVML:
    """The subset of pynvml that Hearth calls, reporting GPUs of the given sizes."""

    NVMLError = FakeNVMLError

    def __init__(self, gpus: list[tuple[str, int, int]], fail_on: str | None = None) -> None:
        self.gpus = gpus  # (name, total, used)
        self.fail_on = fail_on
        self.shutdowns = 0

    def _maybe_fail(self, name: str) -> None:
        if self.fail_on in (name, "*"):
            raise FakeNVMLError(f"{name} failed")

    def nvmlInit(self) -> None:
        self._maybe_fail("nvmlInit")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        self._maybe_fail("nvmlSystemGetDriverVersion")
        return b"550.54"

    def nvmlDeviceGetCount(self) -> int:
        self._maybe_fail("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self.gpus[handle][0]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        self._maybe_fail("nvmlDeviceGetMemoryInfo")
        _, total, used = self.gpus[handle]
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=37, memory=10)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        self._maybe_fail("nvmlDeviceGetTemperature")
        return 61


def test_no_gpu_reads_cpu_and_memory() -> None:
    snap = probe_hardware(nvml=FakeNVML([]))
    assert snap.gpus == [] and snap.problems == []
    assert snap.logical_cores >= snap.physical_cores >= 1
    assert snap.ram_total >= snap.ram_available > 0
    assert snap.cpu_name
    assert set(snap.instruction_sets) <= {"AVX", "AVX2", "AVX512F", "F16C", "FMA", "NEON"}
    assert "CPU" in snap.llama_system_info
    assert isinstance(snap.gpu_offload_supported, bool)


def test_one_gpu() -> None:
    nvml = FakeNVML([("RTX 4090", 24 * GIB, 2 * GIB)])
    snap = probe_hardware(nvml=nvml)
    assert snap.problems == []
    assert snap.gpus == [GpuInfo(0, "RTX 4090", "550.54", 24 * GIB, 2 * GIB, 22 * GIB, 37.0, 61.0)]
    assert nvml.shutdowns == 1


def test_two_gpus() -> None:
    snap = probe_hardware(nvml=FakeNVML([("A", 8 * GIB, 0), ("B", 16 * GIB, GIB)]))
    assert [(g.index, g.name, g.vram_free) for g in snap.gpus] == [
        (0, "A", 8 * GIB), (1, "B", 15 * GIB)]


def test_nvml_that_cannot_start_is_a_problem_not_an_error() -> None:
    snap = probe_hardware(nvml=FakeNVML([("A", GIB, 0)], fail_on="nvmlInit"))
    assert snap.gpus == []
    assert any("NVML could not start" in p for p in snap.problems)


def test_nvml_raising_on_one_call_keeps_the_rest() -> None:
    snap = probe_hardware(nvml=FakeNVML([("A", 8 * GIB, GIB)], fail_on="nvmlDeviceGetTemperature"))
    assert snap.gpus[0].vram_total == 8 * GIB and snap.gpus[0].temperature is None
    assert snap.problems == ["GPU 0: temperature unreadable (nvmlDeviceGetTemperature failed)"]


def test_nvml_raising_while_listing() -> None:
    snap = probe_hardware(nvml=FakeNVML([("A", GIB, 0)], fail_on="nvmlDeviceGetCount"))
    assert snap.gpus == []
    assert any("failed while listing" in p for p in snap.problems)


def test_missing_nvml_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    def missing() -> None:
        raise pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", missing)
    snap = probe_hardware()
    assert snap.gpus == []
    assert any("NVML could not start" in p for p in snap.problems)


def test_missing_nvml_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_package() -> None:
        raise ImportError("No module named 'pynvml'")

    monkeypatch.setattr(hardware, "_load_nvml", no_package)
    snap = probe_hardware()
    assert snap.gpus == []
    assert any("nvidia-ml-py" in p for p in snap.problems)


def test_usage_samples_report_each_gpu() -> None:
    nvml = FakeNVML([("A", 8 * GIB, GIB), ("B", 8 * GIB, 3 * GIB)])
    sample = sample_usage(nvml=nvml)
    assert sample.ram_used > 0 and 0.0 <= sample.cpu_percent <= 100.0
    assert sample.gpu_vram_used == [GIB, 3 * GIB] and sample.gpu_utilization == [37.0, 37.0]
    gen = usage_samples(interval=0.0, nvml=FakeNVML([]))
    assert next(gen).gpu_vram_used == [] and next(gen).ram_used > 0
    gen.close()


def test_usage_sample_survives_a_raising_nvml() -> None:
    sample = sample_usage(nvml=FakeNVML([("A", GIB, 0)], fail_on="nvmlDeviceGetMemoryInfo"))
    assert sample.gpu_vram_used == [0] and sample.gpu_utilization == [None]
    assert sample_usage(nvml=FakeNVML([], fail_on="*")).gpu_vram_used == []
