"""The quantize dialog: pick target types for one model, quantize them in the background,
measure what it cost, and show the report.

Every step that touches llama.cpp, the disk or the Store runs through `TaskRunner` (see
`jobs.py`); the dialog only reacts to results. Closing it, or the main window, while it works
cancels the job, which kills the child process and leaves no half-written file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QMessageBox,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.engine.gguf.quant_types import is_requantize, offered_types, requantize_warning
from app.engine.quantize.quality import (
    DEFAULT_N_CTX,
    EvalProgress,
    EvaluateJob,
    QualityCancelled,
    eval_gpu_layers,
)
from app.engine.quantize.quantize import (
    QuantizeCancelled,
    QuantizeError,
    QuantizeJob,
    QuantizePlan,
    QuantizeProgress,
    QuantizeRequest,
    check_imatrix,
    default_out_dir,
    output_path,
)
from app.engine.sizing.hardware import GpuInfo
from app.engine.types import ModelInfo
from app.models.records import QualityReportRecord
from app.models.store import Store
from app.services.quantized import QuantizeOutcome, evaluate_and_save, quantize_and_register
from app.ui.load_settings_dialog import known_gpus
from app.ui.plain_text import escaped_rich
from app.ui.quantize.footer import STEPS, Footer
from app.ui.quantize.jobs import (
    Prediction,
    plan_or_existing,
    predict_targets,
)
from app.ui.quantize.report_view import QualityReportView
from app.ui.quantize.setup_page import SetupPage
from app.ui.workers import TaskRunner

log = logging.getLogger(__name__)

SETUP_PAGE, REPORT_PAGE = 0, 1


class QuantizeDialog(QDialog):
    libraryChanged = Signal()  # outputs were added to the library
    reportSaved = Signal()  # a quality report was stored

    def __init__(self, store: Store, source: ModelInfo, parent: QWidget | None = None,
                 gpus: list[GpuInfo] | None = None, tasks: TaskRunner | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Quantize {Path(source.path).name}")
        self._store = store
        # Its own runner: a quantization can take an hour, and the window's shared runner
        # would leave My Models' imports queued behind it.
        self._tasks = tasks if tasks is not None else TaskRunner(self)
        self.source = source
        self._gpus = known_gpus() if gpus is None else gpus
        self.imatrix: Path | None = None
        self.out_dir = default_out_dir(Path(source.path))
        self.max_chunks: int | None = None  # windows measured per model; None: the whole sample
        self.n_ctx = DEFAULT_N_CTX
        self.phase = "idle"  # idle | planning | quantizing | measuring | done
        self._job: QuantizeJob | EvaluateJob | None = None
        self._closing = False
        self._stop_planned = False  # Cancel pressed while the plan was being checked
        self._predicting = False

        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_setup())
        self.report_view = QualityReportView()
        self.stack.addWidget(self.report_view)

        footer = Footer()
        self.progress, self.status_label = footer.progress, footer.status_label
        self.error_label = footer.error_label
        self.start_button, self.cancel_button = footer.start_button, footer.cancel_button
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._cancel_clicked)

        layout = QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addWidget(footer)

        if parent is not None:
            # The main window's close stops its TaskRunner; cancel first so the child dies now.
            parent.window().installEventFilter(self)
        self.targets.set_types(offered_types(False))
        self._update_start()
        self._request_predictions()
        self.resize(880, 720)

    # -- building ------------------------------------------------------------------------------
    def _build_setup(self) -> QWidget:
        page = self._setup = SetupPage(self.source, self._output_name, self.out_dir)
        # The page's widgets stay reachable on the dialog: My Models and the tests drive them.
        self.source_label, self.warning_label = page.source_label, page.warning_label
        self.requantize_box, self.targets = page.requantize_box, page.targets
        self.imatrix_label, self.imatrix_button = page.imatrix_label, page.imatrix_button
        self.clear_imatrix_button, self.threads = page.clear_imatrix_button, page.threads
        self.out_dir_label, self.out_dir_button = page.out_dir_label, page.out_dir_button
        self.measure_box = page.measure_box
        self._inputs = page.inputs()
        self.requantize_box.toggled.connect(self._update_start)
        self.targets.checkedChanged.connect(self._update_start)
        self.imatrix_button.clicked.connect(self.choose_imatrix)
        self.clear_imatrix_button.clicked.connect(lambda: self.set_imatrix(None))
        self.out_dir_button.clicked.connect(self.choose_out_dir)
        self._show_imatrix()
        return page

    def _output_name(self, type_name: str) -> str:
        return output_path(Path(self.source.path), type_name, self.out_dir).name

    # -- choices -------------------------------------------------------------------------------
    def set_checked_types(self, names: list[str]) -> None:
        self.targets.set_checked_types(names)

    def choose_imatrix(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an importance matrix", str(Path(self.source.path).parent),
            "Importance matrix (*.gguf *.dat *.imatrix);;All files (*)")
        if path:
            self.set_imatrix(Path(path))

    def set_imatrix(self, path: Path | None) -> None:
        """Use ``path`` as the importance matrix once it has been read and found usable; the IQ
        types are offered only with one. Clearing it (None) takes effect at once."""
        self.error_label.hide()
        if path is None:
            self._use_imatrix(None)
            return
        self.imatrix_label.setText(f"Importance matrix: checking {path.name}…")
        self._tasks.start(check_imatrix, path, on_returned=lambda _r: self._use_imatrix(path),
                          on_errored=self._imatrix_rejected)

    def _use_imatrix(self, path: Path | None) -> None:
        self.imatrix = path
        self._show_imatrix()
        self.targets.set_types(offered_types(path is not None))
        self._request_predictions()

    def _imatrix_rejected(self, exc: BaseException) -> None:
        self._show_imatrix()
        self.error_label.setText(str(exc))
        self.error_label.show()

    def _show_imatrix(self) -> None:
        self._setup.show_imatrix(self.imatrix, self.phase == "idle")

    def choose_out_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", str(self.out_dir))
        if folder:
            self.set_out_dir(Path(folder))

    def set_out_dir(self, folder: Path) -> None:
        self.out_dir = folder
        self.out_dir_label.setText(str(folder))
        self.targets.refresh_outputs()

    def _update_start(self) -> None:
        allowed = (requantize_warning(self.source.file_type) is None
                   or self.requantize_box.isChecked())
        self.start_button.setEnabled(
            self.phase == "idle" and allowed and bool(self.targets.checked_types()))

    # -- predictions ---------------------------------------------------------------------------
    def _request_predictions(self) -> None:
        missing = self.targets.missing_predictions()
        if self._predicting or not missing:
            return
        self._predicting = True
        self._tasks.start(predict_targets, self.source, missing, self.imatrix,
                          self.threads.value(), self._gpus,
                          on_returned=self._predicted, on_errored=self._predict_failed)

    def _predicted(self, predictions: dict[str, Prediction]) -> None:
        self._predicting = False
        self.targets.set_predictions(predictions)
        self._request_predictions()  # an importance matrix may have added types meanwhile

    def _predict_failed(self, exc: BaseException) -> None:
        self._predicting = False
        log.warning("size predictions failed: %s", exc)
        self.targets.set_predictions({t.name: Prediction(None, None)
                                      for t in self.targets.missing_predictions()})

    # -- running -------------------------------------------------------------------------------
    def request(self, overwrite: bool = False) -> QuantizeRequest:
        return QuantizeRequest(
            Path(self.source.path), tuple(self.targets.checked_types()), self.out_dir,
            self.imatrix, self.threads.value(),
            allow_requantize=is_requantize(self.source.file_type)
            and self.requantize_box.isChecked(),
            overwrite=overwrite)

    def start(self, overwrite: bool = False) -> None:
        if self.phase != "idle":
            return
        self._set_phase("planning", "Checking the output folder and predicting sizes…")
        self.error_label.hide()
        self.progress.setValue(0)
        self._tasks.start(plan_or_existing, self.request(overwrite),
                          self.targets.predicted_sizes(),
                          on_returned=self._planned, on_errored=self._failed)

    def _planned(self, result: QuantizePlan | list[Path]) -> None:
        if self._closing:
            self._finish_closing()
            return
        if self._stop_planned:
            self._stop_planned = False
            self._set_phase("idle", "Cancelled; nothing was started.")
            return
        if isinstance(result, list):
            self._set_phase("idle", "")
            names = "\n".join(str(p) for p in result)
            answer = QMessageBox.question(
                self, "Replace existing files?",
                escaped_rich(f"These files already exist:\n{names}\n\nReplace them?"))
            if answer == QMessageBox.StandardButton.Yes:
                self.start(overwrite=True)
            else:
                self.status_label.setText("Nothing was started; the existing files are kept.")
            return
        job = self._job = QuantizeJob(result)
        self._set_phase("quantizing", QuantizeProgress(
            0, len(result.targets), result.targets[0].quant.name, 0, 0).describe())
        self._tasks.start(quantize_and_register, job, self._store,
                          on_yielded=self._quantize_step, on_returned=self._quantized,
                          on_errored=self._failed)

    def _quantize_step(self, step: QuantizeProgress) -> None:
        # The status first, so whoever watches the bar sees the text that goes with it.
        if not self._closing and not self._cancelling():
            self.status_label.setText(step.describe())
        self.progress.setValue(round(step.fraction * STEPS))

    def _quantized(self, outcome: QuantizeOutcome) -> None:
        self._job = None
        if outcome.records:
            self.libraryChanged.emit()
        if self._closing:
            self._finish_closing()
            return
        kept = ", ".join(f.path.name for f in outcome.files)
        if isinstance(outcome.error, QuantizeCancelled):
            extra = f" (finished earlier and added to My Models: {kept})" if kept else ""
            self._set_phase("idle", f"Cancelled; nothing was kept{extra}.")
            self.progress.setValue(0)
            return
        if outcome.error is not None:
            self._show_error(str(outcome.error), kept)
            return
        self.progress.setValue(STEPS)
        if not self.measure_box.isChecked():
            self._set_phase("done", f"Done: {kept} added to My Models.")
            return
        job = self._job = EvaluateJob(
            Path(self.source.path), [(f.type_name, f.path) for f in outcome.files],
            n_ctx=self.n_ctx, max_chunks=self.max_chunks, threads=self.threads.value(),
            gpu_layers=eval_gpu_layers(self.source, self._gpus))
        self.progress.setValue(0)
        self._set_phase("measuring", f"Quantized {kept}; measuring quality…")
        self._tasks.start(evaluate_and_save, job, self._store,
                          on_yielded=self._eval_step, on_returned=self._measured,
                          on_errored=self._failed)

    def _eval_step(self, step: EvalProgress) -> None:
        # The status first, so whoever watches the bar sees the text that goes with it.
        if not self._closing and not self._cancelling():
            self.status_label.setText(step.describe())
        self.progress.setValue(round(step.fraction * STEPS))

    def _measured(self, record: QualityReportRecord) -> None:
        self._job = None
        self.reportSaved.emit()
        if self._closing:
            self._finish_closing()
            return
        self.progress.setValue(STEPS)
        self.report_view.set_report(record.report)
        self.stack.setCurrentIndex(REPORT_PAGE)
        # Shrink to the report: the taller setup page would leave an empty band under the chart.
        ignored = QSizePolicy.Policy.Ignored
        self.stack.widget(SETUP_PAGE).setSizePolicy(ignored, ignored)
        self.resize(self.width(), self.sizeHint().height())
        self._set_phase("done", "Done: the outputs are in My Models and the report is saved.")

    def _failed(self, exc: BaseException) -> None:
        measuring = self.phase == "measuring"
        self._job = None
        self._stop_planned = False
        if self._closing:
            self._finish_closing()
            return
        if isinstance(exc, QualityCancelled):
            self._set_phase("done", "Measuring cancelled; the quantized files were kept.")
        elif isinstance(exc, QuantizeError):
            self._show_error(str(exc))
        elif measuring:
            self._set_phase("done", "")
            self._show_error(f"Measuring failed: {exc} The quantized files were kept.")
        else:
            self._show_error(f"Something went wrong: {exc} Details are in the log.")

    def _show_error(self, message: str, kept: str = "") -> None:
        if kept:
            message += f" Finished earlier and added to My Models: {kept}."
        self.error_label.setText(message)
        self.error_label.show()
        self.progress.setValue(0)
        self._set_phase("idle" if self.phase != "done" else "done", "")

    def _set_phase(self, phase: str, status: str) -> None:
        self.phase = phase
        self.status_label.setText(status)
        busy = phase in ("planning", "quantizing", "measuring")
        for widget in self._inputs:
            widget.setEnabled(not busy and phase != "done")
        self._show_imatrix()
        self.cancel_button.setText("Cancel" if busy else "Close")
        self.cancel_button.setEnabled(True)
        self.start_button.setVisible(phase != "done")
        self._update_start()

    # -- cancel and close ----------------------------------------------------------------------
    @property
    def closing(self) -> bool:
        """Closed by the user but still alive until its cancelled job reports back."""
        return self._closing

    def _cancelling(self) -> bool:
        return self.cancel_button.text() == "Cancelling…"

    def cancel(self) -> None:
        """Stop the running job; the file in progress is removed by the engine."""
        if self.phase == "planning":
            self._stop_planned = True
        elif self._job is not None:
            self._job.cancel()
        else:
            return
        self.cancel_button.setText("Cancelling…")
        self.cancel_button.setEnabled(False)
        self.status_label.setText("Cancelling…")

    def _cancel_clicked(self) -> None:
        if self.phase in ("planning", "quantizing", "measuring"):
            self.cancel()
        else:
            self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.phase in ("planning", "quantizing", "measuring"):
            # Stay alive (hidden) until the job reports back, so its outputs still get
            # registered and the library refreshed; then go.
            self._closing = True
            if self._job is not None:
                self._job.cancel()
        else:
            self.deleteLater()
        super().closeEvent(event)

    def _finish_closing(self) -> None:
        self.phase = "idle"
        self.deleteLater()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Close:
            if self._job is not None:
                self._closing = True
                self._job.cancel()
            self._tasks.shutdown()  # the window is going: wait for this dialog's jobs too
        return False
