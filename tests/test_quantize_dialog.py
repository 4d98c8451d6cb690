"""Quantizing from My Models: the dialog, its progress, cancel, errors, and the quality report."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from shiboken6 import isValid

from app.engine.gguf.info import read_model_info
from app.engine.gguf.quant_types import requantize_warning
from app.engine.quantize import quantize as quantize_module
from app.engine.quantize.quality import QualityRow
from app.engine.quantize.quantize import output_path
from app.ui.quantize.dialog import REPORT_PAGE, QuantizeDialog
from app.ui.quantize.report_view import QualityReportDialog, row_cells
from app.ui.quantize.targets import FIT, PENDING, SIZE
from app.ui.workers import TaskRunner

RUN_TIMEOUT_MS = 60_000


@pytest.fixture
def open_dialog(qtbot, hearth_store):
    """A QuantizeDialog on its own (no main window), with its TaskRunner stopped at teardown."""
    tasks = TaskRunner()
    dialogs: list[QuantizeDialog] = []

    def make(path: Path) -> QuantizeDialog:
        dialog = QuantizeDialog(hearth_store, read_model_info(path), gpus=[], tasks=tasks)
        dialog.max_chunks = 1
        dialogs.append(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        return dialog

    yield make
    live = [d for d in dialogs if isValid(d)]
    for dialog in live:
        if dialog.phase in ("planning", "quantizing", "measuring"):
            dialog.cancel()
    assert tasks.shutdown()
    for dialog in live:
        dialog.close()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def _import(qtbot, page, path: Path) -> None:
    page.import_paths([path])
    qtbot.waitUntil(lambda: page.table_model.row_where(lambda r: r.path == str(path)) >= 0,
                    timeout=10_000)
    assert page.select_path(str(path))


def _open_quantize(qtbot, page) -> QuantizeDialog:
    qtbot.mouseClick(page.quantize_button, Qt.MouseButton.LeftButton)
    dialogs = page.findChildren(QuantizeDialog)
    assert len(dialogs) == 1
    return dialogs[0]


def _records(page) -> dict[str, str]:
    model = page.table_model
    return {model.record(r).path: model.record(r).source for r in range(model.rowCount())}


def test_quantize_two_types_from_my_models_and_read_the_report(
    qtbot, main_window, quantizable_models, tmp_path, monkeypatch
):
    page = main_window.models_page
    store = main_window.context.store
    source = quantizable_models["f16"]
    _import(qtbot, page, source)
    assert page.quantize_button.isEnabled()
    assert not page.report_button.isEnabled()  # nothing measured yet

    dialog = _open_quantize(qtbot, page)
    # Quantize… again raises the same dialog: two would race to write the same outputs.
    qtbot.mouseClick(page.quantize_button, Qt.MouseButton.LeftButton)
    assert page.findChildren(QuantizeDialog) == [dialog]
    dialog.max_chunks = 1
    dialog.set_out_dir(tmp_path / "out")
    dialog.set_checked_types(["Q4_K_M", "Q8_0"])
    assert not dialog.requantize_box.isVisible()  # an F16 source needs no consent
    statuses: list[str] = []
    dialog.progress.valueChanged.connect(lambda _v: statuses.append(dialog.status_label.text()))
    library_changes: list[bool] = []
    page.libraryChanged.connect(lambda: library_changes.append(True))

    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.stack.currentIndex() == REPORT_PAGE, timeout=RUN_TIMEOUT_MS)

    assert any("Q4_K_M (1 of 2): tensor" in s for s in statuses)
    assert any("Q8_0 (2 of 2): tensor" in s for s in statuses)
    assert any(s.startswith("Measuring Q8_0") for s in statuses)
    outputs = [output_path(source, t, tmp_path / "out") for t in ("Q4_K_M", "Q8_0")]
    assert all(p.is_file() for p in outputs)
    assert not list((tmp_path / "out").glob("*.part"))
    records = _records(page)
    assert all(records.get(str(p)) == "quantize" for p in outputs)
    assert library_changes
    lineage = store.get_lineage(outputs[0])
    assert lineage is not None and lineage.quant_type == "Q4_K_M"
    assert Path(lineage.source_path) == source.resolve()

    # The details pane says where a quantized model came from.
    page.select_path(str(outputs[0]))
    assert f"Quantized from {source.name} as Q4_K_M" in page.details.toPlainText()

    # The report: the source and both outputs, in the table and in the chart.
    view = dialog.report_view
    assert view.table.rowCount() == 3
    labels = [view.table.item(r, 0).text() for r in range(3)]
    assert labels == ["F16 (source)", "Q4_K_M", "Q8_0"]
    assert [b.label for b in view.chart.bars()] == labels
    assert view.table.item(1, 5).text().endswith("%")  # perplexity change against the source
    view.metric.setCurrentText("Size")
    assert view.chart.bars()[1].value == pytest.approx(outputs[0].stat().st_size)

    markdown = view.export(tmp_path / "report.md", "markdown").read_text()
    assert all(f"| {label} |" in markdown for label in labels)
    rows = list(csv.DictReader(io.StringIO(view.export(tmp_path / "r.csv", "csv").read_text())))
    assert [r["label"] for r in rows] == labels
    saved = tmp_path / "chosen.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_a, **_k: (str(saved), ""))
    qtbot.mouseClick(view.export_csv_button, Qt.MouseButton.LeftButton)
    assert "Q4_K_M" in saved.read_text()

    # My Models opens the saved report for a measured model.
    assert page.report_button.isEnabled()
    qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    report_dialog = page.findChildren(QualityReportDialog)[0]
    assert report_dialog.report_view.table.rowCount() == 3
    report_dialog.close()
    dialog.close()


def test_cancel_mid_run_keeps_nothing(qtbot, open_dialog, starter_model, tmp_path):
    dialog = open_dialog(starter_model)
    out = tmp_path / "out"
    dialog.set_out_dir(out)
    dialog.set_checked_types(["Q8_0"])
    dialog.requantize_box.setChecked(True)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "tensor" in dialog.status_label.text(), timeout=RUN_TIMEOUT_MS)
    assert dialog.cancel_button.text() == "Cancel"
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.phase == "idle", timeout=RUN_TIMEOUT_MS)
    assert dialog.status_label.text() == "Cancelled; nothing was kept."
    assert not out.exists() or list(out.iterdir()) == []
    assert dialog.start_button.isEnabled()  # it can be started again


def test_closing_the_dialog_mid_run_cancels_it(qtbot, open_dialog, starter_model, tmp_path):
    dialog = open_dialog(starter_model)
    out = tmp_path / "out"
    dialog.set_out_dir(out)
    dialog.set_checked_types(["Q8_0"])
    dialog.requantize_box.setChecked(True)
    dialog.start()
    qtbot.waitUntil(lambda: "tensor" in dialog.status_label.text(), timeout=RUN_TIMEOUT_MS)
    job = dialog._job
    dialog.close()
    qtbot.waitUntil(lambda: dialog._job is None, timeout=RUN_TIMEOUT_MS)
    assert job._cancelled
    assert not out.exists() or list(out.iterdir()) == []
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not isValid(dialog)  # it waited for the job, then went


def test_requantizing_needs_consent_before_start(qtbot, open_dialog, starter_model):
    dialog = open_dialog(starter_model)
    dialog.set_checked_types(["Q4_0"])
    assert dialog.warning_label.isVisible()
    assert dialog.warning_label.text() == requantize_warning("Q4_K_M")
    assert not dialog.start_button.isEnabled()
    dialog.requantize_box.setChecked(True)
    assert dialog.start_button.isEnabled()
    dialog.set_checked_types([])
    assert not dialog.start_button.isEnabled()  # and a type must be ticked


def test_predicted_sizes_and_fit_fill_in(qtbot, open_dialog, quantizable_models):
    dialog = open_dialog(quantizable_models["f16"])
    assert not dialog.requantize_box.isVisible()
    qtbot.waitUntil(lambda: dialog.targets.cell_text("Q8_0", SIZE) != PENDING, timeout=30_000)
    assert dialog.targets.cell_text("Q8_0", SIZE).endswith("MB")
    assert dialog.targets.cell_text("Q8_0", FIT) == "CPU only"  # no GPUs given


def test_iq_types_are_offered_only_with_an_importance_matrix(
    qtbot, open_dialog, quantizable_models, tmp_path, monkeypatch
):
    from app.testing.tiny_gguf import build_test_imatrix

    dialog = open_dialog(quantizable_models["f16"])
    assert "IQ2_XS" not in dialog.targets.type_names()
    # A file that is not an importance matrix is refused with the reason, offering nothing new.
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *_a, **_k: (str(quantizable_models["f32"]), ""))
    qtbot.mouseClick(dialog.imatrix_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.error_label.isVisible, timeout=10_000)
    assert "model" in dialog.error_label.text() and dialog.imatrix is None
    assert "IQ2_XS" not in dialog.targets.type_names()

    imatrix = build_test_imatrix(quantizable_models["f16"], tmp_path / "model.imatrix")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(imatrix), ""))
    qtbot.mouseClick(dialog.imatrix_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.imatrix == imatrix, timeout=10_000)
    assert not dialog.error_label.isVisible()
    assert {"IQ2_XS", "IQ3_XXS"} <= set(dialog.targets.type_names())
    assert imatrix.name in dialog.imatrix_label.text()
    # With the matrix, llama.cpp's dry run can size the IQ types too.
    qtbot.waitUntil(lambda: dialog.targets.cell_text("IQ2_XS", SIZE) != PENDING, timeout=30_000)
    assert dialog.targets.cell_text("IQ2_XS", SIZE).endswith("KB")

    # Clearing the matrix takes the IQ types away again, ticked or not.
    dialog.set_checked_types(["IQ3_XXS", "Q8_0"])
    qtbot.mouseClick(dialog.clear_imatrix_button, Qt.MouseButton.LeftButton)
    assert "IQ3_XXS" not in dialog.targets.type_names()
    assert dialog.targets.checked_types() == ["Q8_0"]

    # And with it back, an IQ type quantizes for real.
    dialog.set_imatrix(imatrix)
    qtbot.waitUntil(lambda: dialog.imatrix == imatrix, timeout=10_000)
    dialog.set_checked_types(["IQ2_XS"])
    dialog.set_out_dir(tmp_path / "out")
    dialog.measure_box.setChecked(False)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.phase == "done", timeout=RUN_TIMEOUT_MS)
    made = output_path(quantizable_models["f16"], "IQ2_XS", tmp_path / "out")
    assert read_model_info(made).file_type == "IQ2_XS"


def test_a_full_disk_is_a_message_in_the_dialog(
    qtbot, open_dialog, quantizable_models, tmp_path, monkeypatch
):
    monkeypatch.setattr(quantize_module, "free_disk_bytes", lambda _folder: 0)
    dialog = open_dialog(quantizable_models["f16"])
    out = tmp_path / "out"
    dialog.set_out_dir(out)
    dialog.set_checked_types(["Q4_K_M"])
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=RUN_TIMEOUT_MS)
    assert "Not enough disk space" in dialog.error_label.text()
    assert dialog.phase == "idle" and dialog.start_button.isEnabled()
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("replace", [False, True])
def test_an_existing_output_is_replaced_only_when_the_user_agrees(
    qtbot, open_dialog, quantizable_models, tmp_path, monkeypatch, replace
):
    source = quantizable_models["f16"]
    existing = output_path(source, "Q8_0", tmp_path)
    existing.write_bytes(b"old")
    asked: list[str] = []

    def answer(_parent, _title, text, *_a, **_k):
        asked.append(text)
        return QMessageBox.StandardButton.Yes if replace else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", answer)
    dialog = open_dialog(source)
    dialog.set_out_dir(tmp_path)
    dialog.measure_box.setChecked(False)
    dialog.set_checked_types(["Q8_0"])
    dialog.start()
    qtbot.waitUntil(lambda: bool(asked), timeout=RUN_TIMEOUT_MS)
    assert str(existing) in asked[0]
    if not replace:
        assert dialog.phase == "idle" and existing.read_bytes() == b"old"
        return
    qtbot.waitUntil(lambda: dialog.phase == "done", timeout=RUN_TIMEOUT_MS)
    assert read_model_info(existing).file_type == "Q8_0"
    assert "added to My Models" in dialog.status_label.text()


def test_a_row_that_could_not_be_measured_says_why():
    failed = QualityRow("Q2_K", "/m/x-Q2_K.gguf", "Q2_K", 1000, 2.9, error="llama.cpp crashed")
    assert row_cells(failed, None)[4] == "failed: llama.cpp crashed"
