"""Developer: run Hearth's OpenAI-compatible server from the window, LM Studio's Developer tab.

Start/Stop, the port, "Serve on the local network" (binds 0.0.0.0, behind a warning, and then
needs a key), "Fetch images from web addresses" (off by default), API keys, "Start the server
with Hearth", the endpoints with copyable snippets, the live request log and the busy slots of
each loaded model. The server shares the window's `ModelPool`, so the chat and API clients use
the same loaded models and slots.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.engine.serving.pool import ModelPool, ServedModel
from app.models.store import Store
from app.server.config import DEFAULT_PORT, ConfigError, ServerConfig
from app.server.request_log import RequestLog
from app.services.serving import ModelCatalog, ServableModel
from app.ui.developer.endpoints_panel import EndpointsPanel
from app.ui.developer.keys_panel import KeysPanel
from app.ui.developer.request_log_model import RequestLogModel
from app.ui.developer.server_control import ServerControl, ServerState, network_urls
from app.ui.loaded_models import model_title
from app.ui.page_chrome import ERROR_STYLE, page_title, scroll_page
from app.ui.plain_text import plain_label
from app.ui.pool_watcher import PoolWatcher
from app.ui.workers import TaskRunner

SETTING_PORT = "server.port"
SETTING_NETWORK = "server.network"
SETTING_REQUIRE_KEY = "server.require_key"
SETTING_AUTOSTART = "server.autostart"
SETTING_FETCH_IMAGES = "server.fetch_images"
FETCH_IMAGES_TIP = ("Requests may then give images as http(s) addresses instead of inline data, "
                    "and the server will make web requests on a client's behalf to fetch them "
                    "(to this computer's own network too). Off: such images are refused.")
LOG_COLUMN_WIDTHS = (72, 0, 200, 90, 64, 56)  # 0: the request path takes what is left
REFRESH_MS = 500  # the request log, while the page is shown
NETWORK_WARNING = ("Other computers on your network will be able to reach this server (it "
                   "listens on 0.0.0.0). Every request must then carry one of your API keys.")
_WARNING_STYLE = ("background: #fff4e5; color: #7a4100; border: 1px solid #f0c36d; "
                  "border-radius: 4px; padding: 6px;")


class DeveloperPage(QWidget):
    def __init__(self, store: Store, pool: ModelPool, models_dir: Path | None = None,
                 data_root: Path | None = None, parent: QWidget | None = None,
                 catalog: ModelCatalog | None = None, watcher: PoolWatcher | None = None) -> None:
        """``catalog``: the window's own, so the chat's model has one API id everywhere;
        ``watcher``: the window's one watcher of the pool."""
        super().__init__(parent)
        self._store = store
        self._pool = pool
        self._watcher = watcher or PoolWatcher(pool, self)
        self._watcher.changed.connect(self._show_models)
        self._autostart_pending = False
        self._security_dirty = False  # keys changed while starting: restart once it runs
        self.catalog = catalog or ModelCatalog(store, models_dir)
        self.request_log = RequestLog()
        self.control = ServerControl(pool, self.catalog, self.request_log, self)
        self._tasks = TaskRunner(self, max_threads=1)
        self._library: list[ServableModel] = []

        server = self._build_server_group()
        # Its own worker: a keyring waiting on a password prompt never holds up the library.
        self._key_tasks = TaskRunner(self, max_threads=1)
        self.keys_panel = KeysPanel(self._key_tasks, data_root)
        self.endpoints = EndpointsPanel(self.base_url, self.snippet_key)
        self.log_model = RequestLogModel(self.request_log, parent=self)
        self.log_view = QTableView()
        self.log_view.setObjectName("requestLog")
        self.log_view.setModel(self.log_model)
        self.log_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.log_view.verticalHeader().hide()
        self.log_view.setMinimumHeight(180)
        self.log_view.setWordWrap(False)
        self.log_view.verticalHeader().setDefaultSectionSize(22)
        header = self.log_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        # Fixed starting widths: sizing to contents would follow whichever rows came first.
        for column, width in enumerate(LOG_COLUMN_WIDTHS):
            if width:
                header.resizeSection(column, width)
        log_group = QGroupBox("Requests")
        QVBoxLayout(log_group).addWidget(self.log_view)
        self.slots_label = plain_label("No model loaded.")
        self.slots_label.setWordWrap(True)
        slots_group = QGroupBox("Busy slots")
        slots_layout = QVBoxLayout(slots_group)
        slots_layout.addWidget(self.slots_label)
        slots_layout.addStretch(1)

        title = page_title("Developer")
        intro = QLabel("An OpenAI-compatible server on this computer: point editors, scripts, "
                       "agents and notebooks at it. It shares the models loaded in the window.")
        intro.setWordWrap(True)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(title)
        layout.addWidget(intro)
        top = QHBoxLayout()
        top.addWidget(server, 3)
        top.addWidget(self.keys_panel, 2)
        layout.addLayout(top)
        layout.addWidget(self.endpoints)
        bottom = QHBoxLayout()
        bottom.addWidget(log_group, 3)
        bottom.addWidget(slots_group, 1)
        layout.addLayout(bottom, 1)
        scroll_page(self, content)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self.control.stateChanged.connect(self._show_state)
        self.control.failed.connect(self._show_error)
        self.control.started.connect(self._on_started)
        self.keys_panel.keysChanged.connect(self._security_changed)
        self.keys_panel.requireToggled.connect(self._require_toggled)
        self.keys_panel.loaded.connect(self._keys_loaded)
        self._restore_settings()
        self._show_state()

    def _build_server_group(self) -> QGroupBox:
        self.status_label = plain_label()
        self.status_label.setObjectName("serverStatus")
        self.start_button = QPushButton("Start server")
        self.start_button.setObjectName("serverStartStop")
        self.start_button.setMinimumWidth(120)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("Any free port")
        self.port_spin.setValue(DEFAULT_PORT)
        self.port_spin.setMinimumWidth(140)
        self.port_spin.setKeyboardTracking(False)  # saved once typed, not at every keystroke
        self.port_spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.network_box = QCheckBox("Serve on the local network")
        self.network_warning = plain_label(NETWORK_WARNING)
        self.network_warning.setWordWrap(True)
        self.network_warning.setStyleSheet(_WARNING_STYLE)
        self.fetch_images_box = QCheckBox("Fetch images from web addresses")
        self.fetch_images_box.setToolTip(FETCH_IMAGES_TIP)
        self.autostart_box = QCheckBox("Start the server with Hearth")
        self.message_label = plain_label()
        self.message_label.setObjectName("serverMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(ERROR_STYLE)

        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.status_label, 1)
        form = QFormLayout()
        form.addRow("Port", self.port_spin)
        group = QGroupBox("Server")
        layout = QVBoxLayout(group)
        layout.addLayout(row)
        layout.addLayout(form)
        layout.addWidget(self.network_box)
        layout.addWidget(self.network_warning)
        layout.addWidget(self.fetch_images_box)
        layout.addWidget(self.autostart_box)
        layout.addWidget(self.message_label)
        layout.addStretch(1)

        self.start_button.clicked.connect(self._start_stop_clicked)
        self.network_box.toggled.connect(self._network_toggled)
        self.fetch_images_box.toggled.connect(self._fetch_images_toggled)
        self.port_spin.valueChanged.connect(
            lambda value: self._store.set_setting(SETTING_PORT, value))
        self.autostart_box.toggled.connect(
            lambda on: self._store.set_setting(SETTING_AUTOSTART, on))
        return group

    # -- settings ------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        # Signals blocked: restoring a value must not write it back or restart anything.
        blockers = [QSignalBlocker(w) for w in (self.port_spin, self.network_box,
                                                self.keys_panel.require_box, self.autostart_box,
                                                self.fetch_images_box)]
        port = self._store.get_setting(SETTING_PORT)
        if isinstance(port, int) and 0 <= port <= 65535:
            self.port_spin.setValue(port)
        self.network_box.setChecked(self._store.get_setting(SETTING_NETWORK) is True)
        self.keys_panel.require_box.setChecked(
            self._store.get_setting(SETTING_REQUIRE_KEY) is True)
        self.autostart_box.setChecked(self._store.get_setting(SETTING_AUTOSTART) is True)
        self.fetch_images_box.setChecked(
            self._store.get_setting(SETTING_FETCH_IMAGES) is True)
        self.network_warning.setVisible(self.network_box.isChecked())
        del blockers

    def start_with_app(self) -> None:
        """Honour "Start the server with Hearth" (once the stored keys have been read)."""
        if self._store.get_setting(SETTING_AUTOSTART) is True:
            self._autostart_pending = True
            self._keys_loaded()

    def _keys_loaded(self) -> None:
        if self._autostart_pending and self.keys_panel.is_loaded:
            self._autostart_pending = False
            self.start_server()

    # -- server --------------------------------------------------------------------------------
    def config(self) -> ServerConfig | None:
        """The config the controls describe, or None (and the reason shown) if it can't work."""
        if not self.keys_panel.is_loaded:
            self._show_error("Reading the API keys… try again in a moment.")
            return None
        keys = tuple(self.keys_panel.keys)
        network = self.network_box.isChecked()
        require = self.keys_panel.require_box.isChecked()
        if network and not keys:
            self._show_error("Serving on the local network needs an API key: generate one "
                             "under API keys, then start the server.")
            return None
        if require and not keys:
            self._show_error("“Require a key” is on, but there is no key yet: generate one "
                             "under API keys.")
            return None
        try:
            return ServerConfig(port=self.port_spin.value(), network=network, api_keys=keys,
                                require_key=require,
                                fetch_images=self.fetch_images_box.isChecked())
        except ConfigError as exc:
            self._show_error(str(exc))
            return None

    def start_server(self) -> None:
        config = self.config()
        if config is not None:
            self.message_label.clear()
            self.control.start(config)

    def stop_server(self) -> None:
        self.control.stop()

    def base_url(self) -> str:
        return self.control.url or f"http://127.0.0.1:{self.port_spin.value() or DEFAULT_PORT}"

    def snippet_key(self) -> str | None:
        return self.keys_panel.selected_key() or next(iter(self.keys_panel.keys), None)

    def _start_stop_clicked(self) -> None:
        if self.control.state is ServerState.RUNNING:
            self.stop_server()
        else:
            self.start_server()

    def _network_toggled(self, on: bool) -> None:
        self._store.set_setting(SETTING_NETWORK, on)
        self.network_warning.setVisible(on)
        if on and not self.keys_panel.keys and self.keys_panel.is_loaded:
            self._show_error("Generate an API key before starting: on the network every "
                             "request needs one.")
        else:
            self.message_label.clear()

    def _fetch_images_toggled(self, on: bool) -> None:
        self._store.set_setting(SETTING_FETCH_IMAGES, on)
        self._security_changed()  # a running server restarts: turned off means off at once

    def _require_toggled(self, on: bool) -> None:
        self._store.set_setting(SETTING_REQUIRE_KEY, on)
        self._security_changed()

    def _security_changed(self) -> None:
        """Keys or "require a key" changed: a running server restarts with them at once."""
        self.endpoints.refresh_url()
        if self.control.state is ServerState.STARTING:
            self._security_dirty = True
        if self.control.state is not ServerState.RUNNING:
            return
        config = self.config()
        if config is None:
            self.control.stop()  # a removed key must not keep working
        else:
            self.control.start(config)

    def _on_started(self, _url: str) -> None:
        self._refresh_library()
        if self._security_dirty:
            self._security_dirty = False
            self._security_changed()

    def _show_state(self) -> None:
        state = self.control.state
        running = state is ServerState.RUNNING
        texts = {ServerState.STOPPED: "Stopped", ServerState.STARTING: "Starting…",
                 ServerState.STOPPING: "Stopping…"}
        text = f"● Running at {self.control.url}" if running else texts[state]
        config = self.control.config
        if running and config is not None and config.network and self.control.port:
            urls = network_urls(self.control.port)[:2]
            text += f"\n   and on the network at {', '.join(urls)}" if urls else ""
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #2e7d32; font-weight: 600;" if running else "")
        self.start_button.setText("Stop server" if running else "Start server")
        self.start_button.setEnabled(state in (ServerState.RUNNING, ServerState.STOPPED))
        stopped = state is ServerState.STOPPED
        self.port_spin.setEnabled(stopped)
        self.network_box.setEnabled(stopped)
        self.endpoints.refresh_url()

    def _show_error(self, message: str) -> None:
        self.message_label.setText(message)

    # -- live view -----------------------------------------------------------------------------
    def refresh(self) -> None:
        self.log_model.refresh()

    def _show_models(self, loaded: list[ServedModel]) -> None:
        if not self.isVisible():
            return  # shown again, it reads the watcher's latest
        by_path = {m.path: m.id for m in self._library if m.path}
        # The chat loads a model under its path; clients name it by its API id.
        ids = [by_path.get(m.path, m.key) for m in loaded]
        self.slots_label.setText("\n".join(
            f"{model_title(m)} ({api_id}): " + (f"{m.busy_slots} of {m.parallel} slots busy"
                                                 if m.kind == "llm" else "embeddings")
            for m, api_id in zip(loaded, ids, strict=True)) or "No model loaded.")
        models = dict(zip(ids, (m.kind for m in loaded), strict=True))
        for model in self._library:
            models.setdefault(model.id, model.kind)
        self.endpoints.set_models(list(models.items()))

    def _refresh_library(self) -> None:
        self._tasks.start(self.catalog.models, on_returned=self._library_read)

    def _library_read(self, models: list[ServableModel]) -> None:
        self._library = models
        self._show_models(self._watcher.models)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._timer.start()
        self._refresh_library()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    def shutdown(self) -> None:
        """At window close: stop the server (freeing its port) and this page's jobs."""
        self._timer.stop()
        self.control.shutdown()
        self._tasks.shutdown()
        self._key_tasks.shutdown()
