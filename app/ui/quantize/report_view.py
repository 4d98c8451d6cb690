"""The quality report: a table of what each quantization cost and gained, a bar chart of one
metric at a time, and Markdown/CSV export. Used inside the quantize dialog and on its own from
My Models ("Quality report…")."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.engine.quantize.quality import QualityReport, QualityRow, ppl_change, to_csv, to_markdown
from app.engine.units import human_bytes
from app.ui.plain_text import escaped_rich
from app.ui.quantize.bar_chart import Bar, BarChart

HEADERS = ["Model", "Type", "Size", "Bits/weight", "Perplexity", "vs source", "Prompt t/s",
           "Generation t/s"]

# (selector text, value of a row, how the value is written, caption under the title)
_Metric = tuple[str, Callable[[QualityRow], float | None], Callable[[float], str], str]
METRICS: list[_Metric] = [
    ("Perplexity", lambda r: r.perplexity, lambda v: f"{v:.3f}",
     "Perplexity on the sample text: lower is better"),
    ("Size", lambda r: float(r.file_size), lambda v: human_bytes(int(v)),
     "File size: smaller needs less RAM/VRAM"),
    ("Generation t/s", lambda r: r.gen_tps, lambda v: f"{v:.1f} t/s",
     "Generation speed on this machine: higher is better"),
    ("Prompt t/s", lambda r: r.prompt_tps, lambda v: f"{v:.1f} t/s",
     "Prompt processing speed on this machine: higher is better"),
]
_MAX_TABLE_HEIGHT = 300
_ERROR_SHOWN = 60  # characters of an error in the table; the tooltip has all of it
EXPORT_FORMATS = {"markdown": (to_markdown, "Markdown (*.md)", ".md"),
                  "csv": (to_csv, "CSV (*.csv)", ".csv")}


def _num(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def row_cells(row: QualityRow, source: QualityRow | None) -> list[str]:
    """The table's cells for one row; a failed row says why in the Perplexity column."""
    cells = [row.label, row.file_type, human_bytes(row.file_size), f"{row.bits_per_weight:.2f}"]
    if row.error:
        error = row.error if len(row.error) <= _ERROR_SHOWN else row.error[:_ERROR_SHOWN] + "…"
        return cells + [f"failed: {error}", "", "", ""]
    ppl = _num(row.perplexity, ".3f")
    if row.perplexity is not None and row.ppl_stderr is not None:
        ppl += f" ± {row.ppl_stderr:.3f}"
    change = ppl_change(row, source)
    return cells + [ppl, "—" if change is None else f"{change:+.1f}%",
                    _num(row.prompt_tps, ".1f"), _num(row.gen_tps, ".1f")]


class QualityReportView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: QualityReport | None = None
        self.header = QLabel()
        self.header.setWordWrap(True)
        self.header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

        self.metric = QComboBox()
        self.metric.addItems([m[0] for m in METRICS])
        self.metric.currentIndexChanged.connect(self._show_chart)
        self.chart = BarChart()

        self.export_md_button = QPushButton("Export Markdown…")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_md_button.clicked.connect(lambda: self.choose_export("markdown"))
        self.export_csv_button.clicked.connect(lambda: self.choose_export("csv"))

        chart_box = QWidget()
        chart_layout = QVBoxLayout(chart_box)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        selector = QHBoxLayout()
        selector.addWidget(QLabel("Chart:"))
        selector.addWidget(self.metric)
        selector.addStretch(1)
        selector.addWidget(self.export_md_button)
        selector.addWidget(self.export_csv_button)
        chart_layout.addLayout(selector)
        chart_layout.addWidget(self.chart, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.table)
        layout.addWidget(chart_box, 1)
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.metric, self.export_md_button, self.export_csv_button):
            widget.setEnabled(enabled)

    def set_report(self, report: QualityReport) -> None:
        self.report = report
        self.header.setText(
            f"<b>{escape(Path(report.source_path).name)}</b> and its quantizations, measured on "
            f"<i>{escape(report.sample)}</i>: {report.n_chunks} windows × {report.n_ctx} tokens, "
            "scored like llama.cpp's llama-perplexity (lower perplexity is better). Speeds are "
            f"tokens per second {report.speed_basis}."
        )
        source = report.source_row
        self.table.setRowCount(len(report.rows))
        for r, row in enumerate(report.rows):
            for c, text in enumerate(row_cells(row, source)):
                item = QTableWidgetItem(text)
                item.setToolTip(row.error or row.path)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self._fit_table_height()
        self._set_enabled(True)
        self._show_chart()

    def _fit_table_height(self) -> None:
        # As tall as its rows (up to a limit), so the chart below gets the rest of the room.
        self.table.resizeRowsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        height = self.table.horizontalHeader().height() + rows + 2 * self.table.frameWidth()
        self.table.setFixedHeight(min(height + 2, _MAX_TABLE_HEIGHT))

    def _show_chart(self) -> None:
        if self.report is None:
            return
        _name, value, fmt, caption = METRICS[self.metric.currentIndex()]
        source = self.report.source_row
        bars = []
        for row in self.report.rows:
            v = None if row.error else value(row)
            text = "—" if v is None else fmt(v)
            change = ppl_change(row, source)
            if self.metric.currentIndex() == 0 and change is not None:
                text += f"  ({change:+.1f}%)"  # bars from zero hide small differences
            bars.append(Bar(row.label, v, text, not row.is_source))
        self.chart.set_bars(bars, caption)

    # -- export --------------------------------------------------------------------------------
    def export(self, path: str | Path, fmt: str) -> Path:
        """Write the report as ``fmt`` ("markdown" or "csv") to ``path``."""
        if self.report is None:
            raise ValueError("There is no report to export yet.")
        render = EXPORT_FORMATS[fmt][0]
        path = Path(path)
        path.write_text(render(self.report), encoding="utf-8")
        return path

    def choose_export(self, fmt: str) -> None:
        if self.report is None:
            return
        _render, file_filter, suffix = EXPORT_FORMATS[fmt]
        stem = Path(self.report.source_path).name.removesuffix(".gguf")
        suggested = str(Path.home() / f"{stem}-quality{suffix}")
        path, _ = QFileDialog.getSaveFileName(self, "Export the quality report", suggested,
                                              file_filter)
        if not path:
            return
        try:
            self.export(path, fmt)
        except OSError as exc:
            QMessageBox.warning(self, "Could not export",
                                escaped_rich(f"{path}: {exc.strerror or exc}"))


class QualityReportDialog(QDialog):
    """The report in a window of its own (My Models' "Quality report…"); not modal."""

    def __init__(self, report: QualityReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"Quality report: {Path(report.source_path).name}")
        self.report_view = QualityReportView(self)
        self.report_view.set_report(report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.report_view, 1)
        layout.addWidget(buttons)
        # As tall as the report needs: a fixed height would leave an empty band under the chart
        # for a report of two or three models.
        self.resize(900, self.sizeHint().height())
