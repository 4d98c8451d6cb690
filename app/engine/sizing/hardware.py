"""What this computer offers a local model: CPU, RAM, swap, NVIDIA GPUs, llama.cpp's backends.

Nothing here raises: whatever cannot be read (no NVIDIA driver, NVML missing, NVML failing on one
call) becomes a sentence in ``problems`` so the Hardware page can say what it could not see.
``nvml`` may be any object with pynvml's function names, so tests can stand in a fake one.
"""

from __future__ import annotations

import dataclasses
import platform
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

# The instruction sets llama.cpp's CPU kernels pick between.
_CPU_FLAGS = {"avx": "AVX", "avx2": "AVX2", "avx512f": "AVX512F", "f16c": "F16C", "fma": "FMA",
              "neon": "NEON", "asimd": "NEON"}


@dataclass
class GpuInfo:
    index: int
    name: str
    driver: str = ""
    vram_total: int = 0
    vram_used: int = 0
    vram_free: int = 0
    utilization: float | None = None  # percent
    temperature: float | None = None  # °C


@dataclass
class HardwareSnapshot:
    cpu_name: str = ""
    physical_cores: int = 0
    logical_cores: int = 0
    instruction_sets: list[str] = field(default_factory=list)
    ram_total: int = 0
    ram_available: int = 0
    swap_total: int = 0
    swap_used: int = 0
    gpus: list[GpuInfo] = field(default_factory=list)
    gpu_offload_supported: bool = False
    llama_system_info: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class UsageSample:
    cpu_percent: float
    ram_used: int
    gpu_vram_used: list[int] = field(default_factory=list)
    gpu_utilization: list[float | None] = field(default_factory=list)


def _cpu_info() -> tuple[str, list[str]]:
    """CPU model name and the llama.cpp-relevant flags, from /proc/cpuinfo where it exists."""
    name, flags = "", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and not name:
                name = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    elif platform.machine().lower() in ("arm64", "aarch64"):
        flags.add("neon")  # every 64-bit ARM CPU has NEON (Apple silicon has no /proc)
    found = sorted({label for flag, label in _CPU_FLAGS.items() if flag in flags})
    return name or platform.processor() or platform.machine(), found


def _load_nvml() -> Any:
    import pynvml

    return pynvml


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _read_gpus(nvml: Any, problems: list[str]) -> list[GpuInfo]:
    error = getattr(nvml, "NVMLError", Exception)
    try:
        nvml.nvmlInit()
    except error as exc:
        problems.append(f"NVIDIA GPUs: NVML could not start ({exc}); no NVIDIA driver?")
        return []
    except Exception as exc:  # a broken install can fail in ways pynvml does not wrap
        problems.append(f"NVIDIA GPUs: NVML could not start ({exc})")
        return []
    gpus: list[GpuInfo] = []
    try:
        try:
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception as exc:
            driver = ""
            problems.append(f"NVIDIA driver version unreadable ({exc})")
        count = nvml.nvmlDeviceGetCount()
        for index in range(count):
            gpus.append(_read_gpu(nvml, index, driver, problems))
    except Exception as exc:
        problems.append(f"NVIDIA GPUs: NVML failed while listing devices ({exc})")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass  # a failed shutdown changes nothing the user can act on
    return gpus


def _read_gpu(nvml: Any, index: int, driver: str, problems: list[str]) -> GpuInfo:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    gpu = GpuInfo(index=index, name=f"GPU {index}", driver=driver)
    try:
        gpu.name = _text(nvml.nvmlDeviceGetName(handle))
    except Exception as exc:
        problems.append(f"GPU {index}: name unreadable ({exc})")
    try:
        mem = nvml.nvmlDeviceGetMemoryInfo(handle)
        gpu.vram_total, gpu.vram_used, gpu.vram_free = int(mem.total), int(mem.used), int(mem.free)
    except Exception as exc:
        problems.append(f"GPU {index}: memory unreadable ({exc})")
    try:
        gpu.utilization = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
    except Exception as exc:
        problems.append(f"GPU {index}: utilisation unreadable ({exc})")
    try:
        gpu.temperature = float(nvml.nvmlDeviceGetTemperature(handle, 0))  # 0: the GPU die
    except Exception as exc:
        problems.append(f"GPU {index}: temperature unreadable ({exc})")
    return gpu


def _llama_backends(snap: HardwareSnapshot) -> None:
    try:
        import llama_cpp

        snap.gpu_offload_supported = bool(llama_cpp.llama_supports_gpu_offload())
        snap.llama_system_info = _text(llama_cpp.llama_print_system_info()).strip()
    except Exception as exc:
        snap.problems.append(f"llama.cpp backends unreadable ({exc})")


def probe_hardware(nvml: ModuleType | Any | None = None) -> HardwareSnapshot:
    """Everything the Hardware page shows; takes a fraction of a second, never raises."""
    snap = HardwareSnapshot()
    try:
        snap.cpu_name, snap.instruction_sets = _cpu_info()
    except OSError as exc:
        snap.problems.append(f"CPU details unreadable ({exc})")
    snap.physical_cores = psutil.cpu_count(logical=False) or 0
    snap.logical_cores = psutil.cpu_count(logical=True) or 0
    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    snap.ram_total, snap.ram_available = vm.total, vm.available
    snap.swap_total, snap.swap_used = swap.total, swap.used
    if nvml is None:
        try:
            nvml = _load_nvml()
        except ImportError:
            snap.problems.append("NVIDIA GPUs: the nvidia-ml-py package is not installed")
    if nvml is not None:
        snap.gpus = _read_gpus(nvml, snap.problems)
    _llama_backends(snap)
    return snap


_offload_lock = threading.Lock()
_offload_cache: list[GpuInfo] | None = None


def offload_gpus() -> list[GpuInfo]:
    """The GPUs llama.cpp can offload layers to: NVML's GPUs if this llama.cpp build has a GPU
    backend, else [] (a CPU-only build puts nothing on a GPU, whatever NVML sees).

    Probed once per process, on first use from any thread; `reset_offload_gpus` forgets it.
    Each call returns fresh copies, so callers may change them.
    """
    global _offload_cache
    with _offload_lock:
        if _offload_cache is None:
            snap = probe_hardware()
            _offload_cache = list(snap.gpus) if snap.gpu_offload_supported else []
        return [dataclasses.replace(g) for g in _offload_cache]


def reset_offload_gpus() -> None:
    """Probe again on the next `offload_gpus` call (for tests, or after a driver change)."""
    global _offload_cache
    with _offload_lock:
        _offload_cache = None


def _open_gpus(nvml: Any) -> list[Any]:
    """nvmlInit and every device handle; NVML is shut down again if listing fails."""
    nvml.nvmlInit()
    try:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    except Exception:
        _shutdown(nvml)
        raise


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass  # shutting down a failed NVML leaves nothing to clean


def _used_vram(nvml: Any, handles: list[Any]) -> int | None:
    if not handles:
        return None
    try:
        return sum(int(nvml.nvmlDeviceGetMemoryInfo(h).used) for h in handles)
    except Exception:
        return None  # a partial sum would look like memory given back


_vram_lock = threading.Lock()
_vram_nvml: Any = None
_vram_handles: list[Any] | None = None  # None: NVML not tried yet


def vram_used(nvml: Any | None = None) -> int | None:
    """Used VRAM summed over all NVIDIA GPUs, or None without NVML, without GPUs, or when a
    read fails. Reads NVML's memory info only: unlike `sample_usage` it takes no CPU reading,
    so it never moves the CPU-percent baseline another sampler relies on.

    Without ``nvml`` NVML is opened on first use and kept open (thread-safe); a given ``nvml``
    (tests) is opened and shut down within the call.
    """
    global _vram_nvml, _vram_handles
    if nvml is not None:
        try:
            handles = _open_gpus(nvml)
        except Exception:
            return None
        try:
            return _used_vram(nvml, handles)
        finally:
            _shutdown(nvml)
    with _vram_lock:
        if _vram_handles is None:
            try:
                opened = _load_nvml()
                _vram_handles = _open_gpus(opened)
                _vram_nvml = opened
            except Exception:
                _vram_handles = []  # no NVML or no driver: don't try on every call
        return _used_vram(_vram_nvml, _vram_handles)


class UsageSampler:
    """Keeps NVML open between samples, so a sample every second stays cheap."""

    def __init__(self, nvml: Any | None = None) -> None:
        self._nvml = nvml
        self._handles: list[Any] = []
        try:
            self._nvml = nvml if nvml is not None else _load_nvml()
            self._nvml.nvmlInit()
            count = self._nvml.nvmlDeviceGetCount()
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:
            self._nvml = None  # no GPUs to sample; the snapshot's problems say why
        psutil.cpu_percent(None)  # the first call only starts the interval

    def sample(self) -> UsageSample:
        s = UsageSample(cpu_percent=psutil.cpu_percent(None),
                        ram_used=psutil.virtual_memory().used)
        for handle in self._handles:
            try:
                s.gpu_vram_used.append(int(self._nvml.nvmlDeviceGetMemoryInfo(handle).used))
                s.gpu_utilization.append(
                    float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            except Exception:
                s.gpu_vram_used.append(0)
                s.gpu_utilization.append(None)
        return s

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass  # shutting down a failed NVML leaves nothing to clean
            self._nvml = None
            self._handles = []


_default_sampler: UsageSampler | None = None


def sample_usage(nvml: Any | None = None) -> UsageSample:
    """One CPU/RAM/GPU reading; the first call opens NVML, later calls reuse it."""
    global _default_sampler
    if nvml is not None:
        sampler = UsageSampler(nvml)
        try:
            return sampler.sample()
        finally:
            sampler.close()
    if _default_sampler is None:
        _default_sampler = UsageSampler()
    return _default_sampler.sample()


def usage_samples(interval: float = 1.0, nvml: Any | None = None) -> Iterator[UsageSample]:
    """A generator of samples every ``interval`` seconds, for a GeneratorWorker to run."""
    sampler = UsageSampler(nvml)
    try:
        while True:
            yield sampler.sample()
            time.sleep(interval)
    finally:
        sampler.close()
