"""The main window: a navigation rail (Chat, My Models, Discover, Hardware, Developer) beside
its page, under the strip of loaded models.

It wires pages to each other and restores the last session; it owns no model, database session
or download itself (those live in the engine host, the Store and background jobs).
"""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.engine.starter import starter_available
from app.engine.types import ModelInfo
from app.models.records import ModelFileRecord
from app.models.store.image_files import StraySweep
from app.services.library import ensure_starter, starter_record
from app.ui.app_context import AppContext
from app.ui.chat.page import ChatPage
from app.ui.chat.shortcuts import ChatShortcuts
from app.ui.developer.page import DeveloperPage
from app.ui.discover.page import DiscoverPage
from app.ui.gguf_drop import GgufDrop
from app.ui.hardware.page import HardwarePage
from app.ui.loaded_models import LoadedModelsStrip
from app.ui.models.page import ModelsPage
from app.ui.plain_text import install_safe_tooltips
from app.ui.pool_watcher import PoolWatcher
from app.ui.theme import ThemeController, theme_button
from app.ui.workers import TaskRunner

log = logging.getLogger(__name__)

GEOMETRY_KEY = "window.geometry"
LAST_MODEL_KEY = "model.last_path"
CHAT_PAGE, MODELS_PAGE, DISCOVER_PAGE, HARDWARE_PAGE, DEVELOPER_PAGE = 0, 1, 2, 3, 4
_NAV_WIDTH = 92


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Hearth")
        install_safe_tooltips()  # every tooltip shown escaped: they quote names from outside
        self.tasks = TaskRunner(self)
        store = context.store

        self.chat_page = ChatPage(store, context.bridge)
        self.models_page = ModelsPage(store, self.tasks)
        self.discover_page = DiscoverPage(store, context.paths.models)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.chat_page)
        self.pages.addWidget(self.models_page)
        self.pages.addWidget(self.discover_page)
        self.hardware_page = HardwarePage()
        self.pages.addWidget(self.hardware_page)
        self.pool_watcher = PoolWatcher(context.pool, self)
        self.developer_page = DeveloperPage(store, context.pool, context.paths.models,
                                            context.paths.root, catalog=context.catalog,
                                            watcher=self.pool_watcher)
        self.pages.addWidget(self.developer_page)
        self.loaded_models = LoadedModelsStrip(self.pool_watcher, context.bridge)
        self.nav = self._build_nav()

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.nav)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(0)
        right.addWidget(self.loaded_models)
        right.addWidget(self.pages, 1)
        layout.addLayout(right, 1)
        self.setCentralWidget(central)

        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.models_page.loadRequested.connect(self.load_in_chat)
        self.models_page.libraryChanged.connect(self.chat_page.model_picker.refresh)
        self.discover_page.libraryChanged.connect(self.models_page.refresh)
        self.discover_page.libraryChanged.connect(self.chat_page.model_picker.refresh)
        context.bridge.loaded.connect(self._remember_model)
        # A server started with Hearth may fail while another page is shown: say so there too.
        self.developer_page.control.failed.connect(
            lambda message: self.statusBar().showMessage(f"Local server: {message}", 15000))
        self.shortcuts = ChatShortcuts(self, self.chat_page, lambda: self.show_page(CHAT_PAGE))
        self.gguf_drop = GgufDrop(self, store, self.tasks, self._library_changed)
        self.gguf_drop.watch(self.chat_page.composer.input.viewport())
        self.theme = ThemeController(store, self)  # follows the system unless told otherwise
        self.theme_button = theme_button(self.theme, self)
        self.statusBar().addPermanentWidget(self.theme_button)

        self.nav.setCurrentRow(CHAT_PAGE)
        self._restore_geometry()
        self._start_model()
        # Image files a stopped Send left behind, off the GUI thread; the close stops it.
        self.tasks.start(store.stray_image_sweep, on_returned=self._stray_images_swept)
        self.developer_page.start_with_app()  # "Start the server with Hearth"

    def _build_nav(self) -> QListWidget:
        # LM Studio's rail: icons over short labels, one column, nothing to drag.
        nav = QListWidget()
        nav.setObjectName("navigation")
        nav.setViewMode(QListView.ViewMode.IconMode)
        nav.setFlow(QListView.Flow.TopToBottom)
        nav.setMovement(QListView.Movement.Static)
        nav.setWrapping(False)
        nav.setIconSize(QSize(28, 28))
        nav.setSpacing(6)
        nav.setFixedWidth(_NAV_WIDTH)
        nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for label, icon in (("Chat", "chat.svg"), ("My Models", "models.svg"),
                            ("Discover", "discover.svg"), ("Hardware", "hardware.svg"),
                            ("Developer", "developer.svg")):
            item = QListWidgetItem(QIcon(str(files("app.resources") / "icons" / icon)), label, nav)
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            item.setSizeHint(QSize(_NAV_WIDTH - 12, 64))
            item.setToolTip(label)
        return nav

    # -- navigation ----------------------------------------------------------------------------
    def show_page(self, index: int) -> None:
        self.nav.setCurrentRow(index)

    def _library_changed(self) -> None:
        self.models_page.refresh()
        self.chat_page.model_picker.refresh()

    def load_in_chat(self, path: str) -> None:
        self.show_page(CHAT_PAGE)
        self.chat_page.model_picker.load_model(path)

    # -- session restore -----------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        saved = self.context.store.get_setting(GEOMETRY_KEY)
        if saved and self.restoreGeometry(QByteArray.fromBase64(saved.encode("ascii"))):
            return
        screen = self.screen().availableGeometry()
        self.resize(min(1280, screen.width() * 9 // 10), min(820, screen.height() * 9 // 10))

    def _start_model(self) -> None:
        """Load the last model, else the starter; on a first run, prepare the starter first."""
        store = self.context.store
        last = store.get_setting(LAST_MODEL_KEY)
        if isinstance(last, str) and Path(last).is_file():
            self.chat_page.model_picker.load_when_paired(last)
            return
        starter = starter_record(store)
        if starter is not None:
            self.chat_page.model_picker.load_when_paired(starter.path)
            return
        if store.list_model_files():
            return  # the user has models; let them pick one
        if not starter_available():
            self.statusBar().showMessage("No models yet: import one from My Models.")
            return
        self.statusBar().showMessage("Preparing the starter model (Gemma 3 270M, 253 MB)…")
        self.tasks.start(
            ensure_starter, store, self.context.paths.models,
            on_returned=self._starter_ready,
            on_errored=self._starter_failed,
        )

    def _starter_ready(self, record: ModelFileRecord) -> None:
        if self.context.closed:
            return
        self.statusBar().showMessage("Starter model ready.", 5000)
        self.models_page.refresh()
        self.chat_page.model_picker.refresh()
        self.chat_page.model_picker.load_model(record.path)

    def _starter_failed(self, exc: BaseException) -> None:
        if self.context.closed:
            return
        self.statusBar().showMessage(
            f"Could not prepare the starter model: {exc} Import a model from My Models."
        )

    def _stray_images_swept(self, removed: StraySweep | None) -> None:
        if removed is None:  # stopped by the close
            return
        if removed.files:
            log.info("removed %d stray image files (%d bytes) no message names",
                     removed.files, removed.bytes)

    # -- session save --------------------------------------------------------------------------
    def _remember_model(self, _job: int, path: str, _info: ModelInfo, _n_ctx: int) -> None:
        if not self.context.closed:
            self.context.store.set_setting(LAST_MODEL_KEY, path)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.context.closed:
            # A setting typed just now is still waiting for its save timer.
            self.chat_page.settings_panel.flush()
            self.chat_page.shutdown()  # ends a tool loop, stops MCP servers
            store = self.context.store
            store.set_setting(GEOMETRY_KEY, self.saveGeometry().toBase64().data().decode("ascii"))
            self.discover_page.shutdown()  # pauses downloads while the Store is still open
            self.hardware_page.shutdown()
            self.developer_page.shutdown()  # frees the port before the pool closes
            self.pool_watcher.stop()
            self.loaded_models.shutdown()
            if not self.tasks.shutdown():
                log.warning("background jobs still running at close")
            self.context.close()
        super().closeEvent(event)
