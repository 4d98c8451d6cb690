"""The quality report: each model measured in a child process, exported, and kept in SQLite."""

from __future__ import annotations

import csv
import io
import math
import threading
from pathlib import Path

import psutil
import pytest

from app.engine.quantize import perplexity as ppl
from app.engine.quantize.quality import (
    EvalProgress,
    EvaluateJob,
    QualityCancelled,
    QualityReport,
    to_csv,
    to_markdown,
)
from app.engine.quantize.quantize import QuantizeJob, QuantizeRequest, plan_quantize
from app.engine.quantize.samples import sample_text
from app.models.store import Store
from app.testing.steps import drain


@pytest.fixture(scope="module")
def quantized(quantizable_models: dict[str, Path],
              tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    out = tmp_path_factory.mktemp("quality")
    plan = plan_quantize(QuantizeRequest(quantizable_models["f16"], ("Q4_0", "Q8_0"),
                                         out_dir=out), predict=False)
    steps = QuantizeJob(plan).run()
    for _ in steps:
        pass
    return [(t.quant.name, t.output) for t in plan.targets]


def test_report_measures_the_source_and_every_output(
    quantizable_models: dict[str, Path], quantized: list[tuple[str, Path]]
) -> None:
    source = quantizable_models["f16"]
    steps, report = drain(EvaluateJob(source, quantized, n_ctx=256, max_chunks=2).run())

    assert [r.label for r in report.rows] == ["F16 (source)", "Q4_0", "Q8_0"]
    assert report.source_row is report.rows[0]
    assert (report.n_ctx, report.n_chunks) == (256, 2)
    for row in report.rows:
        assert row.error is None
        assert row.perplexity is not None and math.isfinite(row.perplexity)
        assert row.prompt_tps and row.prompt_tps > 0 and row.gen_tps and row.gen_tps > 0
    bpw = [r.bits_per_weight for r in report.rows]
    assert bpw[0] > 15.9 and bpw[2] > bpw[1] > 4
    assert report.rows[1].file_size < report.rows[2].file_size < report.rows[0].file_size
    # The child's number is llama-perplexity's number, computed in this process too.
    with ppl.EvalModel(quantized[0][1], n_ctx=256) as model:
        direct = ppl.perplexity(model, sample_text(), max_chunks=2)
    assert report.rows[1].perplexity == pytest.approx(direct.perplexity, rel=1e-6)
    # Progress covered each model's windows and ended on the last model.
    assert {(s.label, s.step) for s in steps if s.stage == "perplexity"} >= {
        ("Q8_0", 1), ("Q8_0", 2), ("F16 (source)", 2)}
    fractions = [s.fraction for s in steps]
    assert fractions == sorted(fractions) and fractions[-1] < 1.0


def test_gpu_offload_asked_of_a_cpu_only_build_measures_on_the_cpu_and_says_so(
    quantizable_models: dict[str, Path]
) -> None:
    import llama_cpp

    assert not llama_cpp.llama_supports_gpu_offload()  # this machine's build; see the GPU note
    _steps, report = drain(EvaluateJob(quantizable_models["f16"], [], n_ctx=256, max_chunks=1,
                                       gpu_layers=99).run())
    assert report.rows[0].perplexity is not None
    assert report.gpu_layers == 0
    assert "tokens per second on this machine's CPU" in to_markdown(report)


def test_measurements_offload_as_many_layers_as_fit(quantizable_models: dict[str, Path]) -> None:
    from app.engine.gguf.info import read_model_info
    from app.engine.quantize.quality import eval_gpu_layers
    from app.engine.sizing.hardware import GpuInfo

    info = read_model_info(quantizable_models["f16"])
    big = [GpuInfo(0, "big", vram_total=80 << 30, vram_free=80 << 30)]
    assert eval_gpu_layers(info, []) == 0
    assert eval_gpu_layers(info, big) == info.block_count + 1  # every block and the output
    tiny = [GpuInfo(0, "tiny", vram_total=1 << 20, vram_free=1 << 20)]
    assert eval_gpu_layers(info, tiny) == 0
    report = QualityReport("/m.gguf", "alice.txt", 512, 1, (), gpu_layers=19)
    assert "with 19 layers on the GPU" in to_markdown(report)


def test_a_broken_output_is_reported_and_the_rest_still_measured(
    quantizable_models: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken-Q4_0.gguf"
    data = quantizable_models["f16"].read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    _steps, report = drain(EvaluateJob(quantizable_models["f16"], [("Q4_0", broken)],
                                       n_ctx=256, max_chunks=1).run())
    source, bad = report.rows
    assert source.perplexity is not None and source.error is None
    assert bad.perplexity is None and bad.error and "broken-Q4_0.gguf" in bad.error
    assert "failed" in to_markdown(report)


def test_cancel_stops_the_measuring_process(
    quantizable_models: dict[str, Path], quantized: list[tuple[str, Path]]
) -> None:
    job = EvaluateJob(quantizable_models["f16"], quantized, n_ctx=256, max_chunks=20)

    def cancel_in_first_model(step: EvalProgress) -> None:
        if step.stage == "perplexity" and step.step == 1:
            threading.Thread(target=job.cancel).start()

    with pytest.raises(QualityCancelled):
        drain(job.run(), cancel_in_first_model)
    assert not psutil.Process().children()


def _report() -> QualityReport:
    from app.engine.quantize.quality import QualityRow

    return QualityReport("/m/model-F16.gguf", "alice.txt", 512, 10, gpu_layers=7, rows=(
        QualityRow("F16 (source)", "/m/model-F16.gguf", "F16", 2_000_000_000, 16.0,
                   perplexity=10.0, ppl_stderr=0.2, prompt_tps=500.0, gen_tps=20.0),
        QualityRow("Q4_K_M", "/m/q/model-Q4_K_M.gguf", "Q4_K_M", 600_000_000, 4.85,
                   perplexity=10.5, ppl_stderr=0.21, prompt_tps=450.0, gen_tps=45.0),
        QualityRow("Q2_K", "/m/q/model-Q2_K.gguf", "Q2_K", 400_000_000, 3.0,
                   error="llama.cpp could not load the model"),
    ))


def test_markdown_and_csv_exports_carry_every_row() -> None:
    report = _report()
    markdown = to_markdown(report)
    assert "| Q4_K_M | Q4_K_M | 600.0 MB | 4.85 | 10.500 ± 0.210 | +5.0% | 450.0 | 45.0 |" \
        in markdown
    assert "10 windows of 512 tokens" in markdown
    assert "failed: llama.cpp could not load the model" in markdown

    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [r["label"] for r in rows] == ["F16 (source)", "Q4_K_M", "Q2_K"]
    assert float(rows[1]["ppl_change_pct"]) == pytest.approx(5.0)
    assert rows[0]["ppl_change_pct"] == "" and rows[2]["perplexity"] == ""
    assert rows[2]["error"] == "llama.cpp could not load the model"
    assert [r["gpu_layers"] for r in rows] == ["7", "7", ""]


def test_reports_are_stored_and_found_from_any_of_their_models(hearth_store: Store) -> None:
    report = _report()
    saved = hearth_store.save_quality_report(report)
    newer = hearth_store.save_quality_report(report)
    assert newer.id > saved.id
    for path in ("/m/model-F16.gguf", "/m/q/model-Q2_K.gguf"):
        found = hearth_store.latest_quality_report(path)
        assert found is not None and found.id == newer.id
        assert found.report == report
    assert hearth_store.latest_quality_report("/elsewhere.gguf") is None
    assert hearth_store.quality_report_paths() == {
        "/m/model-F16.gguf", "/m/q/model-Q4_K_M.gguf", "/m/q/model-Q2_K.gguf"}
