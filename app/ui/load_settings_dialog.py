"""Per-model load settings (persisted in the Store) with a live memory-fit estimate.

The estimate is `app.engine.sizing.memory_estimate.estimate_memory`, recomputed as any control
changes; it only reads the GGUF header (cached), so it is cheap enough to run on every slider
step.
"""

from __future__ import annotations

import html
from typing import Any

import psutil
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.sizing.hardware import GpuInfo, offload_gpus
from app.engine.sizing.memory_estimate import (
    FitEstimate,
    auto_gpu_layers,
    estimate_memory,
    shape_of,
)
from app.engine.types import LoadSettings, ModelInfo
from app.engine.units import human_bytes
from app.models.store import Store
from app.services.load_settings import (  # noqa: F401 - re-exported for the window
    default_load_settings,
    saved_load_settings,
    settings_key,
)
from app.services.projectors import projector_choice
from app.ui.plain_text import escaped_rich

KV_TYPES = ("f16", "q8_0", "q4_0")
_VERDICT_COLORS = {"full offload": "#2e7d32", "partial offload": "#2e6fb6",
                   "CPU only": "#555555", "does not fit": "#b00020"}


def known_gpus() -> list[GpuInfo]:
    """The GPUs llama.cpp can offload to (the engine's cached probe, warmed at startup)."""
    return offload_gpus()


def ram_available() -> int:
    return int(psutil.virtual_memory().available)


def ask_load_anyway(parent: QWidget | None, name: str, estimate: FitEstimate) -> bool:
    """Ask whether to load a model the estimate says will not fit; True means load it."""
    vram_need = sum(estimate.vram_bytes)
    vram_free = sum(estimate.vram_free)
    text = (
        f"{name} needs about {human_bytes(estimate.ram_bytes)} of RAM with these settings, and "
        f"{human_bytes(estimate.ram_available)} is available."
    )
    if estimate.vram_bytes:
        text += f" On the GPU: {human_bytes(vram_need)} needed, {human_bytes(vram_free)} free."
    text += ("\n\nLoading it anyway may make the computer swap heavily or fail. Lower the "
             "context length, use a smaller quant, or change the GPU offload in Load settings.")
    answer = QMessageBox.question(
        parent, "Model may not fit", escaped_rich(text),  # the name comes from the GGUF
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def confirm_fit(parent: QWidget | None, info: ModelInfo, settings: LoadSettings,
                gpus: list[GpuInfo] | None = None, projector_bytes: int = 0) -> bool:
    """True when the model fits, or when it does not and the user chose to load it anyway.
    ``projector_bytes``: the vision projector loaded with it (`ProjectorChoice.size`)."""
    estimate = estimate_memory(info, settings, known_gpus() if gpus is None else gpus,
                               ram_available=ram_available(), projector_bytes=projector_bytes)
    if estimate.verdict != "does not fit":
        return True
    return ask_load_anyway(parent, info.name or info.path, estimate)


class LoadSettingsDialog(QDialog):
    """Edit and save one model's load settings; Save writes them to the Store."""

    def __init__(self, store: Store, info: ModelInfo, gpus: list[GpuInfo] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.info = info
        self.gpus = known_gpus() if gpus is None else gpus
        # The projector a vision model loads with counts in the estimate (its file size).
        self.projector_bytes = projector_choice(store, info.path).size
        self.setWindowTitle(f"Load settings · {info.name or info.path}")
        settings = saved_load_settings(store, info.path, info.context_length)
        max_layers = info.block_count + 1  # every block plus the output layer

        max_ctx = info.context_length or 131072
        self.ctx = QSpinBox()
        self.ctx.setRange(min(64, max_ctx), max_ctx)
        self.ctx.setSingleStep(512)
        self.ctx.setGroupSeparatorShown(True)
        self.ctx.setSuffix(f" tokens (max {max_ctx:,})")
        self.ctx.setValue(settings.n_ctx)

        self.layers = QSlider(Qt.Orientation.Horizontal)
        self.layers.setRange(0, max_layers)
        self.layers.setToolTip(
            f"{info.block_count} blocks plus the output layer; max puts them all on the GPU")
        self.layers.setValue(max_layers if settings.n_gpu_layers < 0
                             else min(settings.n_gpu_layers, max_layers))
        self.layers_label = QLabel()
        self.layers_label.setMinimumWidth(90)
        self.auto_button = QPushButton("Auto")
        self.auto_button.setToolTip("The most layers that fit on the GPU with 512 MiB to spare"
                                    + (", beside the vision projector" if self.projector_bytes
                                       else ""))
        self.auto_button.setEnabled(bool(self.gpus))
        self.auto_button.clicked.connect(self.pick_auto)
        layers_row = QHBoxLayout()
        layers_row.addWidget(self.layers, 1)
        layers_row.addWidget(self.layers_label)
        layers_row.addWidget(self.auto_button)

        self.threads = QSpinBox()
        self.threads.setRange(0, psutil.cpu_count(logical=True) or 64)
        self.threads.setSpecialValueText("Auto (physical cores)")
        self.threads.setValue(settings.n_threads or 0)
        self.batch = QSpinBox()
        self.batch.setRange(32, 8192)
        self.batch.setSingleStep(128)
        self.batch.setValue(settings.n_batch)
        self.flash = QCheckBox("Flash attention")
        self.flash.setChecked(settings.flash_attn)
        self.kv_type = QComboBox()
        self.kv_type.addItems(KV_TYPES)
        self.kv_type.setCurrentText(settings.kv_cache_type)
        self.kv_type.setToolTip("Quantized KV caches need flash attention; llama.cpp turns it on")
        self._limit_kv_types()
        self.mmap = QCheckBox("Memory-map the file (mmap)")
        self.mmap.setChecked(settings.use_mmap)
        self.mlock = QCheckBox("Lock the model in RAM (mlock)")
        self.mlock.setChecked(settings.use_mlock)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.seed.setValue(settings.seed)
        self.seed.setToolTip("Default sampling seed for this model; a chat's own seed wins")
        self.parallel = QSpinBox()
        self.parallel.setRange(1, 16)
        self.parallel.setValue(settings.parallel)
        self.parallel.setToolTip(
            "Requests the local server decodes at once, beside the chat window's own. Each "
            "has a KV cache of the full context length, so fewer use less memory.")

        header = QLabel(
            f"<b style='font-size:15px'>{html.escape(info.name or info.path)}</b><br>"
            f"{html.escape(info.file_type)} · {human_bytes(info.file_size)} · "
            f"{info.block_count} layers · trained for {info.context_length:,} tokens")
        header.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Context length", self.ctx)
        form.addRow("GPU offload layers", layers_row)
        form.addRow("CPU threads", self.threads)
        form.addRow("Batch size", self.batch)
        form.addRow("KV-cache type", self.kv_type)
        form.addRow("Seed", self.seed)
        form.addRow("Parallel requests", self.parallel)
        form.addRow("", self.flash)
        form.addRow("", self.mmap)
        form.addRow("", self.mlock)

        self.verdict_label = QLabel()
        self.verdict_label.setWordWrap(True)
        self.breakdown = QGridLayout()
        self.breakdown.setColumnStretch(0, 1)
        estimate_box = QGroupBox("Memory estimate")
        estimate_layout = QVBoxLayout(estimate_box)
        estimate_layout.addWidget(self.verdict_label)
        estimate_layout.addLayout(self.breakdown)
        self._breakdown_labels: list[tuple[QLabel, QLabel]] = []

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(header)
        layout.addLayout(form)
        layout.addWidget(estimate_box)
        layout.addWidget(buttons)

        for signal in (self.ctx.valueChanged, self.layers.valueChanged, self.batch.valueChanged,
                       self.kv_type.currentTextChanged, self.flash.toggled,
                       self.parallel.valueChanged):
            signal.connect(self.update_estimate)
        self.estimate: FitEstimate | None = None
        self.update_estimate()
        self.resize(560, self.sizeHint().height())

    def _limit_kv_types(self) -> None:
        # llama.cpp refuses a q8_0/q4_0 cache (blocks of 32) when a head is not a multiple of 32
        # wide, so offering them would only produce a failed load.
        shape = shape_of(self.info)
        head = shape.key_length or self.info.embedding_length // max(self.info.head_count, 1)
        if head % 32 == 0:
            return
        model = self.kv_type.model()
        for row in range(1, self.kv_type.count()):
            item = model.item(row)  # type: ignore[attr-defined]
            item.setEnabled(False)
            item.setToolTip(f"Needs heads a multiple of 32 wide; this model's are {head}")
        self.kv_type.setCurrentIndex(0)

    def settings(self) -> LoadSettings:
        layers = self.layers.value()
        return LoadSettings(
            n_ctx=self.ctx.value(),
            n_threads=self.threads.value() or None,
            n_gpu_layers=-1 if layers == self.layers.maximum() else layers,
            n_batch=self.batch.value(),
            use_mmap=self.mmap.isChecked(),
            use_mlock=self.mlock.isChecked(),
            flash_attn=self.flash.isChecked(),
            kv_cache_type=self.kv_type.currentText(),
            seed=self.seed.value(),
            parallel=self.parallel.value(),
        )

    def pick_auto(self) -> None:
        self.layers.setValue(auto_gpu_layers(self.info, self.settings(), self.gpus,
                                             projector_bytes=self.projector_bytes))

    def save(self) -> None:
        self._store.set_setting(settings_key(self.info.path), self.settings().to_dict())
        self.accept()

    def update_estimate(self, *_: Any) -> None:
        layers = self.layers.value()
        at_max = layers == self.layers.maximum()
        self.layers_label.setText(f"{layers} / {self.layers.maximum()}" + (" (max)" if at_max
                                                                          else ""))
        est = self.estimate = estimate_memory(self.info, self.settings(), self.gpus,
                                              ram_available=ram_available(),
                                              projector_bytes=self.projector_bytes)
        color = _VERDICT_COLORS.get(est.verdict, "#555555")
        avail = f"RAM available {human_bytes(est.ram_available)}"
        if self.gpus:
            avail += f", VRAM free {human_bytes(sum(est.vram_free))}"
        note = "" if self.gpus else "<br>No NVIDIA GPU found: every layer runs on the CPU."
        self.verdict_label.setText(
            f"<b style='color:{color}; font-size:15px'>{html.escape(est.verdict)}</b> · "
            f"{est.layers_on_gpu} of {est.max_gpu_layers} layers on the GPU · "
            f"context {est.n_ctx:,}<br>{avail}{note}")
        rows = est.breakdown()
        while len(self._breakdown_labels) < len(rows):
            name, value = QLabel(), QLabel()
            value.setAlignment(Qt.AlignmentFlag.AlignRight)
            row = len(self._breakdown_labels)
            self.breakdown.addWidget(name, row, 0)
            self.breakdown.addWidget(value, row, 1)
            self._breakdown_labels.append((name, value))
        for i, (name, value) in enumerate(self._breakdown_labels):
            visible = i < len(rows)
            name.setVisible(visible)
            value.setVisible(visible)
            if visible:
                label, amount = rows[i]
                total = label.endswith("total")
                name.setText(f"<b>{label}</b>" if total else label)
                value.setText(f"<b>{human_bytes(amount)}</b>" if total else human_bytes(amount))


def open_load_settings(store: Store, info: ModelInfo, parent: QWidget) -> LoadSettingsDialog:
    """Show a model's load settings, modeless so the rest of the window stays usable."""
    dialog = LoadSettingsDialog(store, info, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
