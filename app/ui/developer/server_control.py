"""Start and stop the local server off the GUI thread, and say how it went as Qt signals.

Starting binds the port and waits for uvicorn to answer (up to seconds); stopping waits for open
streams to close. Both run on a one-thread `TaskRunner`, so a Stop queued behind a Start runs
after it, in order. Errors a user can cause (a busy port, a network bind without a key) come back
as `failed(message)` with the server's own user-ready text.
"""

from __future__ import annotations

import logging
import socket
import threading
from enum import Enum

from PySide6.QtCore import QObject, Signal

from app.engine.serving.pool import ModelPool
from app.server.app_factory import create_app
from app.server.config import ConfigError, ServerConfig
from app.server.request_log import RequestLog
from app.server.runner import ServerError, ServerRunner
from app.services.serving import ModelCatalog
from app.ui.workers import TaskRunner

log = logging.getLogger(__name__)


def network_urls(port: int) -> list[str]:
    """Where other machines on the network reach a server bound to 0.0.0.0 (IPv4, no loopback)."""
    import psutil

    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found.append(f"http://{address.address}:{port}")
    return found


class ServerState(Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


class ServerControl(QObject):
    started = Signal(str)  # the URL a client on this machine uses
    stopped = Signal()
    failed = Signal(str)  # a message for the user
    stateChanged = Signal()

    def __init__(self, pool: ModelPool, catalog: ModelCatalog, request_log: RequestLog,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.catalog = catalog
        self.log = request_log  # one log across restarts: the page shows all of it
        self._tasks = TaskRunner(self, max_threads=1)
        self._runner: ServerRunner | None = None  # what the GUI thread knows is running
        # What is serving right now, set by the worker the moment it starts: a window closing
        # before the GUI thread hears `returned` still finds the server and stops it.
        self._live: ServerRunner | None = None
        self._live_lock = threading.Lock()
        self.state = ServerState.STOPPED
        self.config: ServerConfig | None = None

    @property
    def url(self) -> str | None:
        return self._runner.url if self._runner is not None else None

    @property
    def port(self) -> int | None:
        return self._runner.port if self._runner is not None else None

    def start(self, config: ServerConfig) -> None:
        """Start, or restart with ``config`` if it is running (new keys take effect at once)."""
        if self.state in (ServerState.STARTING, ServerState.STOPPING):
            return
        previous, self._runner = self._runner, None
        self.config = config
        self._set_state(ServerState.STARTING)
        self._tasks.start(self._serve, config, previous,
                          on_returned=self._on_started, on_errored=self._on_failed)

    def stop(self) -> None:
        if self._runner is None or self.state is not ServerState.RUNNING:
            return
        runner, self._runner = self._runner, None
        self._set_state(ServerState.STOPPING)
        self._tasks.start(self._halt, runner, on_returned=self._on_stopped,
                          on_errored=self._on_stop_failed)

    def shutdown(self) -> None:
        """At window close: finish queued jobs, then stop the server here (its port is freed)."""
        self._tasks.shutdown()
        with self._live_lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()
        self._runner = None
        self.state = ServerState.STOPPED

    # -- on the worker -------------------------------------------------------------------------
    def _serve(self, config: ServerConfig, previous: ServerRunner | None) -> ServerRunner:
        if previous is not None:
            self._halt(previous)
        runner = ServerRunner(create_app(self.pool, self.catalog, config, self.log), config)
        runner.start()
        with self._live_lock:
            self._live = runner
        return runner

    def _halt(self, runner: ServerRunner) -> None:
        runner.stop()
        with self._live_lock:
            if self._live is runner:
                self._live = None

    # -- results, on the GUI thread ------------------------------------------------------------
    def _set_state(self, state: ServerState) -> None:
        self.state = state
        self.stateChanged.emit()

    def _on_started(self, runner: ServerRunner) -> None:
        self._runner = runner
        self._set_state(ServerState.RUNNING)
        self.started.emit(runner.url)

    def _on_failed(self, exc: BaseException) -> None:
        self._set_state(ServerState.STOPPED)
        if isinstance(exc, (ServerError, ConfigError)):
            self.failed.emit(str(exc))
        else:  # the log has the traceback (TaskRunner logs it); the page gets a sentence
            self.failed.emit(f"The server could not start: {exc}")

    def _on_stopped(self, _result: object = None) -> None:
        self._set_state(ServerState.STOPPED)
        self.stopped.emit()

    def _on_stop_failed(self, exc: BaseException) -> None:
        log.warning("stopping the server failed: %s", exc)
        self._on_stopped()
