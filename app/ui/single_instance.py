"""One Hearth window per data folder: a second launch brings the first to the front and exits.

The first window holds an OS file lock in the data folder (released by the kernel if it
crashes) and listens on a local socket named after the folder. A later launch that cannot take
the lock connects and sends ``raise``. Because only the lock holder listens, it may always
remove a socket a crashed window left behind, and two windows started at the same moment cannot
both win.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import time
from pathlib import Path

from filelock import FileLock, Timeout
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

RAISE = b"raise\n"
LOCK_NAME = "window.lock"


def instance_name(data_root: Path) -> str:
    """The local socket's name for ``data_root``: one per user and folder, short enough for a
    Unix socket path, so tests with different ``HEARTH_HOME`` never meet."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in this environment: the folder alone still separates
        user = ""
    digest = hashlib.sha256(f"{user}\0{data_root.resolve()}".encode()).hexdigest()
    return f"hearth-{digest[:20]}"


class SingleInstance(QObject):
    """``start()`` says whether this process is the first; the first emits ``activated``
    whenever a later launch asks it to come to the front."""

    activated = Signal()

    def __init__(self, name: str, lock_file: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._lock_file = lock_file
        self._lock = FileLock(str(lock_file), timeout=0, thread_local=False)
        self._server: QLocalServer | None = None

    @classmethod
    def for_data_folder(cls, data_root: Path, parent: QObject | None = None) -> SingleInstance:
        try:
            data_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # reported by the window, which cannot open its data either
            log.warning("data folder %s: %s", data_root, exc)
        return cls(instance_name(data_root), data_root / LOCK_NAME, parent)

    def start(self, wait: float = 5.0) -> bool:
        """True: this is the first window, now listening. False: another one holds the folder;
        it has been asked to come to the front (``delivered`` says whether it answered within
        ``wait`` seconds: it may still be starting up)."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            self.delivered = self._send_raise(wait)
            return False
        except OSError as exc:  # an unwritable data folder: the window says so when it opens it
            log.warning("single-instance lock %s: %s", self._lock_file, exc)
        QLocalServer.removeServer(self.name)  # a socket left by a window that crashed
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        server.newConnection.connect(self._accept)
        if not server.listen(self.name):
            # The window still works; only "bring to front" from a second launch is lost.
            log.warning("single-instance socket %s: %s", self.name, server.errorString())
        self._server = server
        self.delivered = False
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock.is_locked:
            if os.name != "nt":  # safe while held (see download_lock); Windows removes it itself
                with contextlib.suppress(OSError):
                    self._lock_file.unlink(missing_ok=True)
            self._lock.release()

    def _send_raise(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while True:
            socket = QLocalSocket()
            socket.connectToServer(self.name)
            if socket.waitForConnected(500):
                socket.write(RAISE)
                socket.flush()
                sent = socket.waitForBytesWritten(1000) or socket.bytesToWrite() == 0
                socket.disconnectFromServer()
                return sent
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)  # the first window holds the lock but is not listening yet

    def _accept(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            conn = self._server.nextPendingConnection()
            conn.readyRead.connect(lambda conn=conn: self._read(conn))
            conn.disconnected.connect(conn.deleteLater)
            if conn.bytesAvailable():
                self._read(conn)

    def _read(self, conn: QLocalSocket) -> None:
        if RAISE.strip() in bytes(conn.readAll().data()):
            self.activated.emit()


def bring_to_front(window: QWidget) -> None:
    """Show ``window`` un-minimised, on top, with the keyboard focus (as far as the window
    manager allows a program to take it)."""
    window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()
