"""The quantize dialog's first page: the source model, the target types, and the options.

Only widgets live here; what choosing does (checking an importance matrix, predicting sizes,
enabling Start) stays in the dialog, which wires these widgets' signals.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

import psutil
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.gguf.quant_types import requantize_warning
from app.engine.types import ModelInfo
from app.engine.units import human_bytes, human_count
from app.ui.plain_text import make_plain
from app.ui.quantize.targets import TargetTable

_WARNING_STYLE = ("background: #fff3cd; color: #664d03; border: 1px solid #e0c060; "
                  "border-radius: 4px; padding: 6px;")


class SetupPage(QWidget):
    def __init__(self, info: ModelInfo, output_name: Callable[[str], str], out_dir: Path,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        source_box = QGroupBox("Source")
        source_layout = QVBoxLayout(source_box)
        self.source_label = QLabel(
            f"<b>{escape(Path(info.path).name)}</b> — {escape(info.file_type)}, "
            f"{human_bytes(info.file_size)}, {human_count(info.parameter_count)} parameters "
            f"({escape(info.architecture)})")
        self.source_label.setToolTip(info.path)
        source_layout.addWidget(self.source_label)
        warning = requantize_warning(info.file_type)
        self.warning_label = QLabel(warning or "")
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(_WARNING_STYLE)
        self.requantize_box = QCheckBox("Quantize anyway")
        source_layout.addWidget(self.warning_label)
        source_layout.addWidget(self.requantize_box)
        self.warning_label.setVisible(warning is not None)
        self.requantize_box.setVisible(warning is not None)

        targets_box = QGroupBox("Quantize to")
        targets_layout = QVBoxLayout(targets_box)
        self.targets = TargetTable(output_name)
        self.imatrix_label = QLabel()
        self.imatrix_button = QPushButton("Importance matrix…")
        self.clear_imatrix_button = QPushButton("Clear")
        imatrix_row = QHBoxLayout()
        imatrix_row.addWidget(self.imatrix_label, 1)
        imatrix_row.addWidget(self.imatrix_button)
        imatrix_row.addWidget(self.clear_imatrix_button)
        targets_layout.addWidget(self.targets, 1)
        targets_layout.addLayout(imatrix_row)

        options = QGroupBox("Options")
        form = QFormLayout(options)
        self.threads = QSpinBox()
        self.threads.setRange(1, psutil.cpu_count(logical=True) or 64)
        self.threads.setValue(psutil.cpu_count(logical=False) or self.threads.maximum())
        form.addRow("Threads", self.threads)
        self.out_dir_label = QLabel(str(out_dir))
        self.out_dir_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # File names, tensor names (progress) and errors come from the model: shown literally.
        make_plain(self.warning_label, self.imatrix_label, self.out_dir_label)
        self.out_dir_button = QPushButton("Change…")
        folder = QHBoxLayout()
        folder.addWidget(self.out_dir_label, 1)
        folder.addWidget(self.out_dir_button)
        form.addRow("Output folder", folder)
        self.measure_box = QCheckBox("Measure quality after quantizing (perplexity and speed)")
        self.measure_box.setChecked(True)
        form.addRow("", self.measure_box)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(source_box)
        layout.addWidget(targets_box, 1)
        layout.addWidget(options)

    def inputs(self) -> list[QWidget]:
        """The widgets that are disabled while a job runs."""
        return [self.requantize_box, self.targets, self.imatrix_button,
                self.clear_imatrix_button, self.threads, self.out_dir_button, self.measure_box]

    def show_imatrix(self, path: Path | None, idle: bool) -> None:
        if path is None:
            self.imatrix_label.setText(
                "Importance matrix: none (the IQ types need one; k-quants improve with one)")
        else:
            self.imatrix_label.setText(f"Importance matrix: {path.name}")
            self.imatrix_label.setToolTip(str(path))
        self.clear_imatrix_button.setEnabled(path is not None and idle)
