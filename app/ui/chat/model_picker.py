"""Top bar of the chat page: pick a library model, load or eject it, see what is loaded."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from superqt import QElidingLabel

from app.engine.inference.events import MemoryCheck
from app.engine.inference.prompt_format import PLAIN_FORMAT_LABEL
from app.engine.types import LoadSettings, ModelInfo
from app.engine.units import human_bytes
from app.models.store import Store
from app.services.projectors import folder_paired, projector_choice
from app.ui import load_settings_dialog
from app.ui.bridge import EngineBridge
from app.ui.load_settings_dialog import (  # noqa: F401 - default_load_settings is re-exported
    LoadSettingsDialog,
    default_load_settings,
    open_load_settings,
    saved_load_settings,
)
from app.ui.pairings_watch import pairings_watch
from app.ui.plain_text import make_plain

TEMPLATE_LABEL = "Model's chat template"
VISION_MARK = " · vision"


class ModelPicker(QWidget):
    loadFailed = Signal(str)

    def __init__(self, store: Store, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._bridge = bridge
        self._job: int | None = None  # the load this picker is waiting for
        self._labels: dict[str, str] = {}  # each listed model's label, without the vision mark
        # Vision marks come from the library's pairing pass, shared with My Models: it reads
        # the headers of the files beside each model, so it runs off the GUI thread.
        self._pairings = pairings_watch(store)
        self._pairings.changed.connect(self._pairings_changed)
        self._load_after_pairing: str | None = None  # see `load_when_paired`

        self.combo = QComboBox(self)
        self.combo.setMinimumContentsLength(24)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.load_button = QPushButton("Load", self)
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.setToolTip("Context length, GPU offload and memory estimate")
        self.eject_button = QPushButton("Eject", self)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        # Eliding labels: on a narrow window these end in "…" rather than being cut mid-word
        # against their neighbour; the tooltips carry the whole text.
        self.loaded_label = QElidingLabel(parent=self)
        self.format_label = QElidingLabel(parent=self)
        self.memory_label = QElidingLabel(parent=self)  # estimated vs measured memory
        self.memory_label.hide()
        self.error_label = QLabel(self)
        self.error_label.setStyleSheet("color: #b00020")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        # Model names, file types and load errors come from GGUF files: shown literally.
        make_plain(self.loaded_label, self.format_label, self.memory_label, self.error_label)

        # Controls on one row, what the loaded model is on the next: the status texts are long
        # and must never widen the window past the screen.
        for label in (self.loaded_label, self.format_label, self.memory_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        controls.addWidget(self.combo, 1)
        controls.addWidget(self.load_button)
        controls.addWidget(self.settings_button)
        controls.addWidget(self.eject_button)
        controls.addWidget(self.progress)
        status = QHBoxLayout()
        status.addWidget(self.loaded_label, 2)
        status.addWidget(self.format_label, 2)
        status.addWidget(self.memory_label, 3)
        status.addWidget(self.error_label, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addLayout(status)

        self.load_button.clicked.connect(self._on_load_clicked)
        self.settings_button.clicked.connect(self.edit_settings)
        self.eject_button.clicked.connect(self._bridge.unload)
        bridge.loadProgress.connect(self._on_progress)
        bridge.loaded.connect(self._on_loaded)
        bridge.unloaded.connect(self._on_unloaded)
        bridge.failed.connect(self._on_failed)
        bridge.memoryChecked.connect(self._on_memory_checked)
        self.refresh()
        self._show_state(bridge.loaded_info, bridge.n_ctx)
        if bridge.memory_check is not None:
            self._show_memory(bridge.memory_check)

    # -- public --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the model library, keeping the selected model selected."""
        keep = self.combo.currentData() or self._bridge.loaded_path
        self.combo.clear()
        records = self._store.list_model_files()
        # Names and types from the Store now; the marks of the last pairing pass at once, then
        # a fresh pass's when it ends (the library or the files beside a model may have changed).
        self._labels = {r.path: f"{r.name or Path(r.path).stem} · {r.file_type}"
                        for r in records}
        for path in self._labels:
            self.combo.addItem(self._label(path), path)
        self._pairings.refresh(list(self._labels))
        row = self.combo.findData(keep)
        if row >= 0:
            self.combo.setCurrentIndex(row)
        self.load_button.setEnabled(self.combo.count() > 0 or self._job is not None)
        self.settings_button.setEnabled(self.combo.count() > 0)

    def load_model(self, path: str, settings: LoadSettings | None = None) -> int | None:
        """Load a model with ``settings``, else its saved load settings, else the defaults (the
        model's own context length, at most 8192 tokens). Returns the job, or None when the model
        will not fit and the user chose not to load it."""
        self._load_after_pairing = None  # this load replaces one waiting for the pairing pass
        record = self._store.get_model_file_by_path(path)
        if settings is None:
            settings = saved_load_settings(self._store, path,
                                           record.context_length if record else None)
        projector = projector_choice(self._store, path)  # the user's pick, else the folder's
        if record is not None and not load_settings_dialog.confirm_fit(
                self, record.info, settings, projector_bytes=projector.size):
            return None
        self.error_label.hide()
        self.progress.setValue(0)
        self.progress.show()
        self.load_button.setText("Cancel")
        self.load_button.setEnabled(True)
        self._job = self._bridge.load(path, settings, projector=projector.path)
        return self._job

    def load_when_paired(self, path: str) -> None:
        """`load_model` once the background pairing pass has read the model's folder (at
        startup it is still running): its projector is then known without reading headers
        here, nor waiting on the pass's lock."""
        if folder_paired(path):
            self.load_model(path)
            return
        self._load_after_pairing = path
        self.progress.setValue(0)
        self.progress.show()  # loading, as far as the user can tell
        self._pairings.refresh([*self._labels, path])

    @property
    def loading(self) -> bool:
        return self._job is not None

    def edit_settings(self) -> LoadSettingsDialog | None:
        """Open the load settings of the selected model (modeless, so the chat stays usable)."""
        record = self._store.get_model_file_by_path(self.combo.currentData() or "")
        if record is None:
            return None
        return open_load_settings(self._store, record.info, self)

    # -- private -------------------------------------------------------------------------------
    def _label(self, path: str) -> str:
        return self._labels[path] + (VISION_MARK if self._pairings.is_vision(path) else "")

    def _pairings_changed(self, _user_choice: bool) -> None:
        self._mark_vision()
        path = self._load_after_pairing
        if path is not None and (folder_paired(path) or not self._pairings.running):
            self._load_after_pairing = None
            self.load_model(path)

    def _mark_vision(self) -> None:
        # Item texts change in place: the selection and the order stay as they are.
        for row in range(self.combo.count()):
            path = self.combo.itemData(row)
            if path in self._labels:
                self.combo.setItemText(row, self._label(path))

    def _on_load_clicked(self) -> None:
        if self._job is not None:
            self._bridge.cancel(self._job)
            return
        path = self.combo.currentData()
        if path:
            self.load_model(path)

    def _on_progress(self, job: int, fraction: float) -> None:
        if job == self._job:
            self.progress.setValue(round(fraction * 100))

    def _on_loaded(self, job: int, _path: str, info: ModelInfo, n_ctx: int) -> None:
        if job == self._job:
            self._end_load()
        self._show_state(info, n_ctx)

    def _on_unloaded(self, _job: int, _path: str) -> None:
        self._show_state(None, 0)
        self.memory_label.hide()

    def _on_memory_checked(self, check: MemoryCheck) -> None:
        # Kept so the estimate's track record survives restarts (Store.list_memory_checks).
        self._store.add_memory_check(check)
        self._show_memory(check)

    def _show_memory(self, check: MemoryCheck) -> None:
        self.memory_label.setText(memory_text(check))
        # Right after loading, RSS has not yet seen the weights read or the KV cache and
        # compute buffers touched; say so rather than let a low figure look like the truth.
        when = ("measured after the first reply" if check.after_reply else
                "measured right after loading; updated after the first reply")
        self.memory_label.setToolTip(
            f"Estimated peak memory beside the process's memory growth, {when}. "
            f"Context {check.n_ctx}, KV cache {check.kv_type}, {check.gpu_layers} GPU layers. "
            "The estimate is the peak with a full context, so a short chat measures lower.")
        self.memory_label.show()

    def _on_failed(self, job: int, message: str, _kind: str) -> None:
        if job != self._job:  # only the load this picker started, whatever the failure
            return
        self._end_load()
        # The engine keeps the previous model when a load fails, and so does this bar.
        self.error_label.setText(message)
        self.error_label.show()
        self.loadFailed.emit(message)

    def _end_load(self) -> None:
        self._job = None
        self.progress.hide()
        self.load_button.setText("Load")
        self.load_button.setEnabled(self.combo.count() > 0)

    def _show_state(self, info: ModelInfo | None, n_ctx: int) -> None:
        self.eject_button.setEnabled(info is not None)
        if info is None:
            self.loaded_label.setText("No model loaded")
            self.format_label.clear()
            return
        name = info.name or Path(info.path).stem
        self.loaded_label.setText(f"Loaded: {name} ({info.file_type}) · context {n_ctx}")
        self.format_label.setText(TEMPLATE_LABEL if info.has_chat_template else PLAIN_FORMAT_LABEL)
        for label in (self.loaded_label, self.format_label):  # they may be cut on narrow windows
            label.setToolTip(label.text())


def memory_text(check: MemoryCheck) -> str:
    """``Memory: estimated 594.0 MB · measured 610.0 MB (RAM)``, with a VRAM pair when measured."""
    text = (f"Memory: estimated {human_bytes(check.estimated_ram)} · "
            f"measured {human_bytes(max(0, check.actual_ram_growth))} (RAM"
            f"{', after load' if not check.after_reply else ''})")
    if check.actual_vram_growth is not None and check.estimated_vram is not None:
        text += (f" · estimated {human_bytes(check.estimated_vram)} · "
                 f"measured {human_bytes(max(0, check.actual_vram_growth))} (VRAM)")
    return text
