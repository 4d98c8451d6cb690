"""The one place where download events cross into the GUI thread.

`DownloadManager` calls back on its worker threads. `_on_event` only re-emits the event through a
signal connected with a queued connection, so every slot runs on the GUI thread; nothing here
touches a widget from a worker thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.engine.hub.api import FileTarget
from app.engine.hub.download_lock import remove_part
from app.engine.hub.downloads import DownloadEvent, DownloadManager, DownloadRecord, part_path
from app.models.store import Store
from app.services.downloaded import library_callback


class DownloadBridge(QObject):
    """Owns the page's `DownloadManager` and turns its callbacks into Qt signals."""

    event = Signal(object)  # DownloadEvent, on the GUI thread
    completed = Signal(str)  # path of a finished, verified and registered file
    _arrived = Signal(object)

    def __init__(self, models_dir: Path, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models_dir = Path(models_dir)
        self._store = store
        self._manager: DownloadManager | None = None
        self._arrived.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def _ensure(self, token: str | None) -> DownloadManager:
        # Created on the first download. The token is read off the GUI thread (it may come from
        # the keyring) together with each download's file list, so every `add` brings the
        # current one: a token set after a 401 is used by the next download.
        if self._manager is None:
            self._manager = DownloadManager(
                self._models_dir, self._on_event, journal=self._store,
                on_complete=library_callback(self._store), token=token)
        else:
            self._manager.set_token(token)
        return self._manager

    def set_token(self, token: str | None) -> None:
        """Use ``token`` from now on (also for Resume of a download of this session)."""
        if self._manager is not None:
            self._manager.set_token(token)

    # -- GUI thread ----------------------------------------------------------------------------
    def add(self, targets: list[FileTarget], token: str | None) -> list[str]:
        manager = self._ensure(token)
        return [manager.add(target) for target in targets]

    def pause(self, key: str) -> None:
        if self._manager is not None:
            self._manager.pause(key)

    def resume(self, key: str) -> bool:
        """Resume a paused or failed download of this session; False if the manager lacks it."""
        if self._manager is None or self._manager.record(key) is None:
            return False
        self._manager.resume(key)
        return True

    def cancel(self, key: str) -> None:
        if self._manager is not None:
            self._manager.cancel(key)

    def unfinished(self) -> list[DownloadRecord]:
        """Downloads an earlier run left paused or failed (their part files are on disk)."""
        return [r for r in self._store.list_downloads() if r.status != "done"]

    def forget(self, record: DownloadRecord) -> None:
        """Cancel a download left by an earlier run that this session never started (its part
        file stays if another Hearth process is downloading it right now)."""
        remove_part(part_path(Path(record.dest)))
        self._store.delete_download(record.key)

    def close(self) -> None:
        """Pause running downloads (parts stay for the next launch) and wait for their threads."""
        if self._manager is not None:
            self._manager.close()

    # -- worker threads ------------------------------------------------------------------------
    def _on_event(self, event: DownloadEvent) -> None:
        self._arrived.emit(event)

    @Slot(object)
    def _deliver(self, event: DownloadEvent) -> None:
        self.event.emit(event)
        if event.kind == "done":
            self.completed.emit(event.path)
