"""Hardware: what this computer offers a local model, and live CPU / RAM / GPU charts.

One background generator first yields the hardware snapshot (probing NVML and llama.cpp can take
a moment) and then a usage sample every ``interval`` seconds, so nothing here runs on the GUI
thread and the charts keep moving while the engine thread streams a reply. The page owns its own
TaskRunner: the sampler occupies a pool thread for the page's whole life and must not starve the
window's short jobs (imports, the starter model).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from app.engine.sizing.hardware import HardwareSnapshot, UsageSample, probe_hardware, usage_samples
from app.engine.units import human_bytes
from app.ui.hardware.sparkline import Sparkline
from app.ui.page_chrome import page_title, scroll_page
from app.ui.workers import TaskRunner

HISTORY_SECONDS = 120
SAMPLE_INTERVAL = 1.0  # seconds; a module value so tests can sample faster

def _feed(interval: float, nvml: Any | None) -> Iterator[HardwareSnapshot | UsageSample]:
    yield probe_hardware(nvml)
    yield from usage_samples(interval, nvml)


def _bytes(n: float) -> str:
    return human_bytes(int(n))  # decimal units, as the load settings and Discover show them


def _label(text: str = "", rich: bool = False) -> QLabel:
    label = QLabel(text)
    if not rich:  # what the system reports (CPU name, llama.cpp's info) is shown literally
        label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class HardwarePage(QWidget):
    def __init__(self, interval: float | None = None, nvml: Any | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        interval = SAMPLE_INTERVAL if interval is None else interval
        self._interval = interval
        self._nvml = nvml
        self._tasks = TaskRunner(self, max_threads=1)
        self.snapshot: HardwareSnapshot | None = None
        capacity = max(2, round(HISTORY_SECONDS / interval))

        self.cpu_label, self.cores_label, self.isa_label = _label("Probing…"), _label(), _label()
        self.ram_label, self.swap_label = _label(), _label()
        system = QGroupBox("System")
        form = QFormLayout(system)
        form.addRow("CPU", self.cpu_label)
        form.addRow("Cores", self.cores_label)
        form.addRow("Instruction sets", self.isa_label)
        form.addRow("RAM", self.ram_label)
        form.addRow("Swap", self.swap_label)

        self.gpu_label = _label(rich=True)  # Hearth's HTML; the names in it are escaped
        gpus = QGroupBox("NVIDIA GPUs")
        QVBoxLayout(gpus).addWidget(self.gpu_label)

        self.offload_label = _label()
        self.system_info_label = _label()
        self.system_info_label.setFont(
            QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        llama = QGroupBox("llama.cpp backends")
        llama_form = QFormLayout(llama)
        llama_form.addRow("GPU offload", self.offload_label)
        llama_form.addRow("System info", self.system_info_label)

        self.cpu_chart = Sparkline("CPU", 100, lambda v: f"{v:.0f} %", capacity)
        self.ram_chart = Sparkline("RAM used", 1, _bytes, capacity, "#2e8b57")
        self.gpu_charts: list[tuple[Sparkline, Sparkline]] = []
        self._capacity = capacity
        charts = QGroupBox(f"Usage, last {HISTORY_SECONDS // 60} minutes")
        self._chart_grid = QGridLayout(charts)
        self._chart_grid.addWidget(self.cpu_chart, 0, 0)
        self._chart_grid.addWidget(self.ram_chart, 0, 1)

        content = QWidget()
        layout = QVBoxLayout(content)
        title = page_title("Hardware")
        layout.addWidget(title)
        layout.addWidget(charts)
        layout.addWidget(system)
        layout.addWidget(gpus)
        layout.addWidget(llama)
        layout.addStretch(1)
        scroll_page(self, content)

        self._tasks.start(_feed, interval, nvml, on_yielded=self._on_yielded)

    @property
    def charts(self) -> list[Sparkline]:
        return [self.cpu_chart, self.ram_chart, *(c for pair in self.gpu_charts for c in pair)]

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop the sampler (it stops at its next sample) and wait for its thread."""
        return self._tasks.shutdown(timeout_ms)

    def _on_yielded(self, item: HardwareSnapshot | UsageSample) -> None:
        if isinstance(item, HardwareSnapshot):
            self._show_snapshot(item)
        else:
            self._add_sample(item)

    def _show_snapshot(self, snap: HardwareSnapshot) -> None:
        self.snapshot = snap
        self.cpu_label.setText(snap.cpu_name or "unknown")
        self.cores_label.setText(f"{snap.physical_cores} physical, {snap.logical_cores} logical")
        self.isa_label.setText(", ".join(snap.instruction_sets) or "none that llama.cpp uses")
        self.ram_label.setText(
            f"{_bytes(snap.ram_total)} total, {_bytes(snap.ram_available)} available")
        self.swap_label.setText(f"{_bytes(snap.swap_total)} total, {_bytes(snap.swap_used)} used")
        self.ram_chart.maximum = max(snap.ram_total, 1)

        lines = []
        for gpu in snap.gpus:
            extras = []
            if gpu.utilization is not None:
                extras.append(f"{gpu.utilization:.0f} % busy")
            if gpu.temperature is not None:
                extras.append(f"{gpu.temperature:.0f} °C")
            lines.append(
                f"<b>GPU {gpu.index}: {html.escape(gpu.name)}</b> (driver {gpu.driver or '?'})<br>"
                f"VRAM {human_bytes(gpu.vram_total)} total, {human_bytes(gpu.vram_used)} used, "
                f"{human_bytes(gpu.vram_free)} free" + "".join(f" · {e}" for e in extras))
            vram = Sparkline(f"GPU {gpu.index} VRAM", max(gpu.vram_total, 1), _bytes,
                             self._capacity, "#b0632e")
            util = Sparkline(f"GPU {gpu.index} utilisation", 100, lambda v: f"{v:.0f} %",
                             self._capacity, "#8a4fb6")
            row = len(self.gpu_charts) + 1
            self._chart_grid.addWidget(vram, row, 0)
            self._chart_grid.addWidget(util, row, 1)
            self.gpu_charts.append((vram, util))
        if not snap.gpus:
            lines.append("No NVIDIA GPU found.")
        # Say what could not be read rather than showing a blank section.
        lines += [f"<span style='color:#a05a00'>{html.escape(p)}</span>" for p in snap.problems]
        self.gpu_label.setText("<br>".join(lines))

        self.offload_label.setText(
            "yes: this build can put layers on a GPU" if snap.gpu_offload_supported
            else "no: this build of llama-cpp-python runs on the CPU only")
        self.system_info_label.setText(snap.llama_system_info or "unavailable")

    def _add_sample(self, sample: UsageSample) -> None:
        self.cpu_chart.add(sample.cpu_percent)
        self.ram_chart.add(sample.ram_used)
        for (vram, util), used, busy in zip(
            self.gpu_charts, sample.gpu_vram_used, sample.gpu_utilization, strict=False
        ):
            vram.add(used)
            util.add(busy or 0.0)
