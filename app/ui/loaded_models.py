"""The "loaded models" strip: one chip per model in the serving pool, with its memory and Unload.

The pool is shared by the window's chat and the local server, so models appear here however
they were loaded (the chat's picker, an API request naming a model, `hearth serve --model`).
The window's `PoolWatcher` says when they change; unloading waits for the model's decode thread,
so it runs on a worker. The chat's own
model is unloaded through the bridge (as its Eject button does), so the chat page knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.engine.serving.pool import ServedModel
from app.engine.units import human_bytes
from app.ui.plain_text import plain_label
from app.ui.pool_watcher import PoolWatcher
from app.ui.workers import TaskRunner

if TYPE_CHECKING:
    from app.ui.bridge import EngineBridge

_KINDS = {"llm": "LLM", "embeddings": "Embeddings"}


def model_title(model: ServedModel) -> str:
    """The name a person knows the model by: its GGUF name, else its file name."""
    return (model.info.name or Path(model.path).name or model.key)[:80]


def model_details(model: ServedModel, in_chat: bool = False) -> str:
    parts = [_KINDS.get(model.kind, model.kind), human_bytes(model.memory_bytes)]
    if in_chat:
        parts.insert(0, "in Chat")
    if model.kind == "llm":
        parts.append(f"{model.busy_slots}/{model.parallel} busy")
    if model.jit:
        parts.append("loaded on request")
    return " · ".join(parts)


class ModelChip(QFrame):
    unloadClicked = Signal(str)  # the model's key

    def __init__(self, model: ServedModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = model.key
        self.path = model.path
        self.setObjectName("loadedModelChip")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#loadedModelChip { border: 1px solid palette(mid); border-radius: 6px;"
                           " background: palette(base); }")
        self.name_label = plain_label()
        self.name_label.setStyleSheet("font-weight: 600;")
        self.details_label = plain_label()
        self.details_label.setStyleSheet("color: palette(placeholder-text);")
        self.unload_button = QPushButton("Unload")
        self.unload_button.clicked.connect(lambda: self.unloadClicked.emit(self.key))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 4, 2)
        layout.setSpacing(8)
        layout.addWidget(self.name_label)
        layout.addWidget(self.details_label)
        layout.addWidget(self.unload_button)
        self.update_from(model)

    def update_from(self, model: ServedModel, in_chat: bool = False) -> None:
        self.name_label.setText(model_title(model))
        self.details_label.setText(model_details(model, in_chat))
        self.setToolTip(f"{model.key}\n{model.path}\ncontext {model.n_ctx} tokens")


class LoadedModelsStrip(QWidget):
    unloaded = Signal(str)  # a key, once its model is gone

    def __init__(self, watcher: PoolWatcher, bridge: EngineBridge | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loadedModelsStrip")
        # A rule under the strip separates it from the page below.
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet("#loadedModelsStrip { border-bottom: 1px solid palette(mid); }")
        self._watcher = watcher
        self._tasks = TaskRunner(self, max_threads=1)
        self._bridge = bridge
        self.chat_path: str | None = None  # the file the chat's model was loaded from
        if bridge is not None:
            bridge.loaded.connect(self._chat_loaded)
            bridge.unloaded.connect(self._chat_unloaded)
        self.chips: dict[str, ModelChip] = {}
        self._title = QLabel("Loaded models")
        self._title.setStyleSheet("font-weight: 600;")
        self.empty_label = QLabel("None: load one from Chat or My Models, or through the server.")
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 4, 10, 4)
        self._layout.setSpacing(8)
        self._layout.addWidget(self._title)
        self._layout.addWidget(self.empty_label)
        self._layout.addStretch(1)
        watcher.changed.connect(self._show)
        self._show(watcher.models)

    def refresh(self) -> None:
        self._watcher.poll()
        self._show(self._watcher.models)

    def _show(self, served: list[ServedModel]) -> None:
        models = {m.key: m for m in served}
        for key in [k for k in self.chips if k not in models]:
            self.chips.pop(key).deleteLater()
        for key, model in models.items():
            chip = self.chips.get(key)
            if chip is None:
                chip = self.chips[key] = ModelChip(model, parent=self)
                chip.unloadClicked.connect(self.unload)
                self._layout.insertWidget(self._layout.count() - 1, chip)
            chip.update_from(model, in_chat=model.path == self.chat_path)
        self.empty_label.setVisible(not models)

    def unload(self, key: str) -> None:
        chip = self.chips.get(key)
        if chip is not None:
            chip.unload_button.setEnabled(False)
            chip.unload_button.setText("Unloading…")
        if chip is not None and chip.path == self.chat_path and self._bridge is not None:
            self._bridge.unload()  # the chat page hears `unloaded` and shows no model
            return
        self._tasks.start(self._watcher.pool.unload, key,
                          on_finished=lambda: self._unloaded(key))

    def _chat_loaded(self, _job: int, path: str, _info: object, _n_ctx: int) -> None:
        self.chat_path = path
        self.refresh()

    def _chat_unloaded(self, _job: int, path: str) -> None:
        if path == self.chat_path:
            self.chat_path = None
        self._unloaded(path)

    def _unloaded(self, key: str) -> None:
        self.refresh()
        chip = self.chips.get(key)
        if chip is not None:  # only an alias went, or the unload failed: the model is still here
            chip.unload_button.setEnabled(True)
            chip.unload_button.setText("Unload")
        self.unloaded.emit(key)

    def shutdown(self) -> bool:
        return self._tasks.shutdown()
