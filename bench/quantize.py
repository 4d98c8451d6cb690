"""Quantizing an F16 model to Q4_K_M through Hearth vs a direct `llama_model_quantize` call.

Hearth runs llama.cpp in a child process (so Cancel can stop it and a crash cannot take the
window down), reads progress from its log and renames a `.part` file at the end; this measures
what that costs. The input is an F16 copy of the starter model, made at the start of the run;
both sides use the same file and thread count, alternating, after one warm-up each so the page
cache is equally warm. A third arm runs the same call in a bare child process, to tell what
Hearth's own code costs from what any process-per-job design costs on this machine. Each
figure is the fastest round: on a shared machine other programs
can only slow a run down, and single rounds here vary by ±15%. Floor: Hearth ≤ 1.1 × direct.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import llama_cpp
from _common import median, starter_model, verdict

from app.engine.inference import llama_log
from app.engine.quantize.quantize import QuantizeJob, QuantizeRequest, plan_quantize

ROUNDS = 7
THREADS = os.cpu_count() or 1


def direct(source: Path, dest: Path, ftype: int, allow_requantize: bool = False) -> float:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = THREADS
    params.allow_requantize = allow_requantize
    started = time.perf_counter()
    if llama_cpp.llama_model_quantize(str(source).encode(), str(dest).encode(),
                                      ctypes.byref(params)) != 0:
        raise SystemExit(f"llama_model_quantize failed on {source}")
    return time.perf_counter() - started


def through_hearth(source: Path, out_dir: Path) -> float:
    started = time.perf_counter()
    plan = plan_quantize(QuantizeRequest(source, ("Q4_K_M",), out_dir=out_dir, threads=THREADS,
                                         overwrite=True), predict=False)
    steps = QuantizeJob(plan).run()
    for _step in steps:
        pass
    return time.perf_counter() - started


_BARE_CHILD = """
import ctypes, sys, llama_cpp
quiet = llama_cpp.llama_log_callback(lambda *_: None)
llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
params.nthread = int(sys.argv[3])
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(),
                                        ctypes.byref(params)))
"""


def bare_child(source: Path, dest: Path) -> float:
    """The same call in a plain child process: what any process-per-job design costs, for
    telling Hearth's own overhead from the machine's."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", _BARE_CHILD, str(source), str(dest), str(THREADS)],
                   check=True)
    return time.perf_counter() - started


def main() -> int:
    llama_log.install()  # keep llama.cpp's per-tensor log out of the output
    # In RAM where there is room: disk write-back and discards from one round otherwise land in
    # the next, which measures the file system rather than Hearth.
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() and shutil.disk_usage(shm).free > 3 * 10**9 else None
    with tempfile.TemporaryDirectory(prefix="hearth-bench-quantize-", dir=where) as tmp:
        folder = Path(tmp)
        source = folder / "starter-F16.gguf"
        direct(starter_model(), source, llama_cpp.LLAMA_FTYPE_MOSTLY_F16, allow_requantize=True)
        print(f"source: {source.name}, {source.stat().st_size / 1e6:.0f} MB, {THREADS} threads")
        target = folder / "direct-Q4_K_M.gguf"
        direct(source, target, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)  # warm-up
        through_hearth(source, folder / "hearth")
        arms = {
            "direct": lambda: direct(source, target, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M),
            "Hearth": lambda: through_hearth(source, folder / "hearth"),
            "bare child": lambda: bare_child(source, folder / "bare-Q4_K_M.gguf"),
        }
        times: dict[str, list[float]] = {name: [] for name in arms}
        names = list(arms)
        for i in range(ROUNDS):
            # Each arm takes each place in the order in turn: on this kind of machine a run is
            # often slower right after another quantization, and that must not favour any arm.
            for name in names[i % 3:] + names[:i % 3]:
                times[name].append(arms[name]())
            print(f"round {i + 1}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
        for name, values in times.items():
            print(f"{name}: fastest {min(values):.2f} s, median {median(values):.2f} s")
        print(f"median ratio Hearth/direct: "
              f"{median(times['Hearth']) / median(times['direct']):.3f}")
        ratio = min(times["Hearth"]) / min(times["direct"])
    return verdict("quantize_time_ratio", ratio, 1.1, higher_is_better=False, unit="x")


if __name__ == "__main__":
    raise SystemExit(main())
