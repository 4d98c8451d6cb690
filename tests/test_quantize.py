"""Quantizing through Hearth: real llama.cpp in a child process, on real GGUF files."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import llama_cpp
import psutil
import pytest

import app.engine.quantize.quantize as quantize_mod
from app.engine.gguf.info import read_model_info
from app.engine.gguf.quant_types import QUANT_TYPES, offered_types, quant_type, requantize_warning
from app.engine.quantize.quantize import (
    OutputExists,
    QuantizeCancelled,
    QuantizeError,
    QuantizeJob,
    QuantizeProgress,
    QuantizeRequest,
    RequantizeRefused,
    base_name,
    plan_quantize,
)
from app.models.store import Store
from app.services.quantized import register_quantized
from app.testing.steps import drain


def generate(path: Path) -> str:
    llm = llama_cpp.Llama(str(path), n_ctx=64, verbose=False, seed=1)
    try:
        out = llm("the model", max_tokens=4, temperature=0.0)
        return out["choices"][0]["text"]  # type: ignore[index]
    finally:
        llm.close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_outputs_load_generate_and_shrink_in_order(
    dtype: str, quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    source = quantizable_models[dtype]
    types = ("Q2_K", "Q4_K_M", "Q8_0", "F16") if dtype == "f32" else ("Q2_K", "Q4_K_M", "Q8_0")
    plan = plan_quantize(QuantizeRequest(source, types, out_dir=tmp_path, threads=2))
    steps, outputs = drain(QuantizeJob(plan).run())

    assert [o.type_name for o in outputs] == list(types)
    sizes = [o.size for o in outputs]
    assert sizes == sorted(sizes) and sizes[-1] < source.stat().st_size
    for output, target in zip(outputs, plan.targets, strict=True):
        info = read_model_info(output.path)
        assert info.file_type == output.type_name
        assert output.path.name == f"{base_name(source)}-{output.type_name}.gguf"
        # llama.cpp's dry run predicted the size to within the metadata llama.cpp adds.
        assert target.predicted_size is not None
        assert abs(target.predicted_size - output.size) <= 256
        assert isinstance(generate(output.path), str)
    # Progress named every tensor of every target, ending at N of N.
    finals = [s for s in steps if s.n_tensors and s.tensor == s.n_tensors]
    assert [s.type_name for s in finals] == list(types)
    assert not list(tmp_path.glob("*.part"))


def test_lineage_is_recorded_in_the_library(
    quantizable_models: dict[str, Path], tmp_path: Path, hearth_store: Store
) -> None:
    source = quantizable_models["f16"]
    plan = plan_quantize(QuantizeRequest(source, ("Q4_0",), out_dir=tmp_path))
    _steps, outputs = drain(QuantizeJob(plan).run())
    records = register_quantized(hearth_store, source, outputs)

    assert [r.source for r in records] == ["quantize"]
    assert hearth_store.get_model_file_by_path(outputs[0].path) is not None
    lineage = hearth_store.get_lineage(outputs[0].path)
    assert lineage is not None
    assert (lineage.source_path, lineage.quant_type) == (str(source.resolve()), "Q4_0")
    assert hearth_store.list_lineage() == {str(outputs[0].path): lineage}


def test_type_names_are_llama_cpp_ftypes() -> None:
    for t in QUANT_TYPES:
        assert isinstance(getattr(llama_cpp, t.ftype), int), t.ftype
    assert quant_type("q4_k_m").name == "Q4_K_M"
    with pytest.raises(ValueError, match="Unknown quantization type 'Q9'"):
        quant_type("Q9")
    required = {"Q2_K", "Q3_K_M", "Q4_0", "Q4_K_S", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"}
    assert required <= {t.name for t in offered_types(have_imatrix=False)}
    assert not any(t.needs_imatrix for t in offered_types(have_imatrix=False))
    assert any(t.name.startswith("IQ") for t in offered_types(have_imatrix=True))


def test_imatrix_types_are_refused_without_an_importance_matrix(
    quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(QuantizeError, match="IQ2_XS need an importance matrix"):
        plan_quantize(QuantizeRequest(quantizable_models["f16"], ("IQ2_XS",), out_dir=tmp_path))
    assert leftovers(tmp_path) == []
    # IQ4_XS merely does better with one, so it is offered and works without.
    plan = plan_quantize(QuantizeRequest(quantizable_models["f16"], ("IQ4_XS",), out_dir=tmp_path))
    _steps, outputs = drain(QuantizeJob(plan).run())
    assert read_model_info(outputs[0].path).file_type == "IQ4_XS"


@pytest.mark.starter
def test_requantizing_the_starter_needs_consent_then_works(
    starter_model: Path, tmp_path: Path
) -> None:
    request = QuantizeRequest(starter_model, ("Q8_0",), out_dir=tmp_path, threads=2)
    with pytest.raises(RequantizeRefused) as refused:
        plan_quantize(request)
    assert str(refused.value) == requantize_warning("Q4_K_M")
    assert "compounds" in str(refused.value)

    plan = plan_quantize(QuantizeRequest(**{**vars(request), "allow_requantize": True}))
    assert plan.warning is not None
    _steps, outputs = drain(QuantizeJob(plan).run())
    assert read_model_info(outputs[0].path).file_type == "Q8_0"
    assert generate(outputs[0].path)


@pytest.mark.starter
def test_cancel_mid_run_leaves_no_file(starter_model: Path, tmp_path: Path) -> None:
    plan = plan_quantize(QuantizeRequest(starter_model, ("Q6_K", "Q8_0"), out_dir=tmp_path,
                                         threads=1, allow_requantize=True), predict=False)
    job = QuantizeJob(plan)
    seen: list[QuantizeProgress] = []

    def cancel_after_some(step: QuantizeProgress) -> None:
        seen.append(step)
        if step.tensor == 3:
            # From another thread, as the GUI's Cancel button does.
            threading.Thread(target=job.cancel).start()

    with pytest.raises(QuantizeCancelled):
        drain(job.run(), cancel_after_some)
    assert seen[-1].n_tensors > 100 and seen[-1].tensor < seen[-1].n_tensors
    assert leftovers(tmp_path) == []


@pytest.mark.starter
def test_a_crash_in_llama_cpp_is_an_error_not_a_crash(starter_model: Path, tmp_path: Path) -> None:
    plan = plan_quantize(QuantizeRequest(starter_model, ("Q6_K",), out_dir=tmp_path, threads=1,
                                         allow_requantize=True), predict=False)

    def crash_worker(step: QuantizeProgress) -> None:
        if step.tensor == 2:
            for child in psutil.Process().children():
                os.kill(child.pid, signal.SIGSEGV)

    with pytest.raises(QuantizeError, match=r"llama.cpp crashed \(SIGSEGV\)") as failed:
        drain(QuantizeJob(plan).run(), crash_worker)
    assert not isinstance(failed.value, QuantizeCancelled)
    assert leftovers(tmp_path) == []


@pytest.mark.starter
def test_stopping_iteration_kills_the_worker_and_removes_the_part(
    starter_model: Path, tmp_path: Path
) -> None:
    plan = plan_quantize(QuantizeRequest(starter_model, ("Q6_K",), out_dir=tmp_path, threads=1,
                                         allow_requantize=True), predict=False)
    steps = QuantizeJob(plan).run()
    while next(steps).tensor < 2:
        pass
    assert list(tmp_path.glob("*.part"))
    steps.close()  # what happens when a window closes mid-run
    assert leftovers(tmp_path) == []
    assert not psutil.Process().children()


def test_bad_sources_get_clear_errors(
    quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("not a model at all")
    with pytest.raises(QuantizeError, match="Cannot quantize notes.gguf: .*not a GGUF"):
        plan_quantize(QuantizeRequest(text, ("Q4_K_M",), out_dir=tmp_path / "out"))
    with pytest.raises(QuantizeError, match="does not exist"):
        plan_quantize(QuantizeRequest(tmp_path / "gone.gguf", ("Q4_K_M",)))
    with pytest.raises(QuantizeError, match="at least one type"):
        plan_quantize(QuantizeRequest(quantizable_models["f16"], ()))
    assert leftovers(tmp_path) == ["notes.gguf"]


def test_refuses_to_overwrite_the_source_or_an_existing_output(
    quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    source = tmp_path / "model-Q8_0.gguf"
    source.write_bytes(quantizable_models["f16"].read_bytes())
    # Its own folder, its own type: the output name would be the source's name.
    with pytest.raises(QuantizeError, match="would overwrite the source"):
        plan_quantize(QuantizeRequest(source, ("Q8_0",), out_dir=tmp_path, overwrite=True,
                                      allow_requantize=True))
    existing = tmp_path / "out" / "model-Q4_0.gguf"
    existing.parent.mkdir()
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputExists, match="already exists"):
        plan_quantize(QuantizeRequest(source, ("Q4_0",), out_dir=existing.parent))
    assert existing.read_bytes() == b"keep me"

    plan = plan_quantize(QuantizeRequest(source, ("Q4_0",), out_dir=existing.parent,
                                         overwrite=True))
    drain(QuantizeJob(plan).run())
    assert read_model_info(existing).file_type == "Q4_0"


def test_a_full_disk_is_refused_before_any_work(
    quantizable_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quantize_mod, "free_disk_bytes", lambda _folder: 10_000_000)
    with pytest.raises(QuantizeError, match=r"Not enough disk space .* only 10\.0 MB is free"):
        plan_quantize(QuantizeRequest(quantizable_models["f16"], ("Q8_0",), out_dir=tmp_path))
    assert leftovers(tmp_path) == []


def test_disk_filling_up_during_the_run_fails_cleanly(
    quantizable_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_quantize(QuantizeRequest(quantizable_models["f16"], ("Q4_0", "Q8_0"),
                                         out_dir=tmp_path))
    free = iter([10**12, 0])  # room for the first output, then another program took the disk
    monkeypatch.setattr(quantize_mod, "free_disk_bytes", lambda _folder: next(free))
    job = QuantizeJob(plan)
    with pytest.raises(QuantizeError, match="Not enough disk space"):
        steps = job.run()
        while True:
            next(steps)
    kept = f"{base_name(quantizable_models['f16'])}-Q4_0.gguf"
    assert leftovers(tmp_path) == [kept]
    assert [f.path.name for f in job.finished] == [kept]  # complete, so the caller registers it


def test_iq_types_quantize_with_an_importance_matrix(
    quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    from app.testing.tiny_gguf import build_test_imatrix

    source = quantizable_models["f16"]
    imatrix = build_test_imatrix(source, tmp_path / "tiny.imatrix")
    plan = plan_quantize(QuantizeRequest(source, ("IQ2_XS", "Q2_K"), out_dir=tmp_path / "out",
                                         imatrix=imatrix))
    assert all(t.predicted_size for t in plan.targets)
    _steps, outputs = drain(QuantizeJob(plan).run())
    assert [read_model_info(o.path).file_type for o in outputs] == ["IQ2_XS", "Q2_K"]
    assert generate(outputs[0].path) is not None


def test_a_file_that_is_not_an_importance_matrix_is_refused(
    quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(QuantizeError, match="model"):
        plan_quantize(QuantizeRequest(quantizable_models["f16"], ("IQ2_XS",),
                                      out_dir=tmp_path / "out", imatrix=quantizable_models["f32"]))
    assert leftovers(tmp_path) == []


_KILLED_PARENT = """
import sys
from pathlib import Path
from typing import Any
from app.engine.quantize.quantize import QuantizeJob, QuantizeRequest, plan_quantize
plan = plan_quantize(QuantizeRequest(Path(sys.argv[1]), ("Q6_K",), out_dir=Path(sys.argv[2]),
                                     threads=1, allow_requantize=True), predict=False)
for step in QuantizeJob(plan).run():
    if step.tensor == 2:
        print("running", flush=True)
"""


@pytest.mark.starter
def test_killing_hearth_mid_run_stops_the_worker_and_leaves_nothing(
    starter_model: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT, str(starter_model), str(out)],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline() == "running\n"
    worker = psutil.Process(parent.pid).children()[0]
    parent.kill()
    parent.wait()
    worker.wait(timeout=30)  # it notices at its next progress line, not at the end
    assert leftovers(out) == []


def test_output_cut_short_by_a_full_disk_is_reported_as_such(
    quantizable_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama.cpp does not notice failed writes; Hearth checks the finished file, and when the disk
    # is what cut it short, says so. Here the disk "fills up" once planning is done.
    plan = plan_quantize(QuantizeRequest(quantizable_models["f16"], ("Q8_0",), out_dir=tmp_path))

    def full_after_the_write(part: Path) -> object:
        from app.testing.tiny_gguf import truncate_copy

        truncate_copy(part, part, keep_fraction=0.5)
        monkeypatch.setattr(quantize_mod, "free_disk_bytes", lambda _folder: 4096)
        return read_model_info(part)

    monkeypatch.setattr(quantize_mod, "read_model_info", full_after_the_write)
    with pytest.raises(QuantizeError, match=r"disk holding .* is full .*Nothing was kept"):
        drain(QuantizeJob(plan).run())
    assert leftovers(tmp_path) == []


@pytest.mark.starter
def test_a_worker_killed_for_memory_says_so(starter_model: Path, tmp_path: Path) -> None:
    plan = plan_quantize(QuantizeRequest(starter_model, ("Q6_K",), out_dir=tmp_path, threads=1,
                                         allow_requantize=True), predict=False)

    def out_of_memory_killer(step: QuantizeProgress) -> None:
        if step.tensor == 2:
            for child in psutil.Process().children():
                os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(QuantizeError, match="SIGKILL.*ran out of memory"):
        drain(QuantizeJob(plan).run(), out_of_memory_killer)
    assert leftovers(tmp_path) == []


@pytest.mark.starter
def test_a_cancel_landing_while_the_worker_starts_still_stops_it(
    starter_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import time

    from app.engine.quantize import worker_process
    from app.engine.quantize.worker_process import WorkerCancelled, WorkerProcess

    worker = WorkerProcess({
        "cmd": "quantize", "source": str(starter_model), "dest": str(tmp_path / "x.part"),
        "type": "Q6_K", "ftype": "LLAMA_FTYPE_MOSTLY_Q6_K", "threads": 1,
        "allow_requantize": True,
    })
    real_popen = subprocess.Popen

    def slow_start(*args: Any, **kwargs: Any) -> subprocess.Popen[str]:
        # The user presses Cancel just as the child is being started.
        threading.Thread(target=worker.cancel).start()
        time.sleep(0.2)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(worker_process.subprocess, "Popen", slow_start)
    started = time.perf_counter()
    with pytest.raises(WorkerCancelled):
        for _message in worker.messages():
            pass
    assert time.perf_counter() - started < 1.5  # the whole quantization takes several seconds
