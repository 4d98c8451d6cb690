"""Serve the app with uvicorn on a thread of its own, on a socket bound first.

Binding before uvicorn starts turns a busy port into an immediate, clear error (uvicorn would
log it and exit its thread), and lets port 0 pick a free port whose number we then know.
"""

from __future__ import annotations

import errno
import socket
import sys
import threading
import time

import uvicorn
from fastapi import FastAPI

from app.server.config import ServerConfig

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class ServerError(RuntimeError):
    """The server could not start; the message is meant for the user."""


class PortInUse(ServerError):
    pass


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR lets a restart reuse a port in TIME_WAIT; it never shares a listening port
    # on Linux/macOS (Windows would, so it is left off there).
    if sys.platform != "win32":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise PortInUse(f"Port {port} is already in use (another Hearth, LM Studio or "
                            "another server?). Stop it, or choose another port.") from exc
        raise ServerError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.setblocking(False)
    return sock


class ServerRunner:
    def __init__(self, app: FastAPI, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    def start(self) -> None:
        """Bind and serve; returns once requests are answered. Raises PortInUse/ServerError."""
        if self._thread is not None:
            return
        self._socket = bind(self.config.bind_host, self.config.port)
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2, server_header=False))
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="hearth-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError("The server did not start (see the log for why).")
            time.sleep(0.01)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the server."""
        host = "127.0.0.1" if self.config.network else self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop answering, close open streams (their sequences are cancelled), free the port."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
