"""Dropping .gguf files (or folders of them) on the window imports them, as My Models' Import
does: indexed off the GUI thread, the outcome in the status bar. Other files are refused with a
sentence saying so, never read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QWidget

from app.models.store import Store
from app.services.library import ImportReport, iter_import
from app.ui.workers import TaskRunner

STATUS_MS = 15_000
MAX_NAMES_SHOWN = 3


def dropped_paths(mime: QMimeData) -> list[Path]:
    """The local files and folders a drag carries (web addresses are not offered)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


def _is_model(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() == ".gguf"


def _names(paths: list[Path]) -> str:
    shown = ", ".join(path.name or str(path) for path in paths[:MAX_NAMES_SHOWN])
    more = len(paths) - MAX_NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


class GgufDrop(QObject):
    """Watches the window for drops; ``on_added`` runs after models were added."""

    def __init__(self, window: QMainWindow, store: Store, tasks: TaskRunner,
                 on_added: Callable[[], None]) -> None:
        super().__init__(window)
        self._window = window
        self._store = store
        self._tasks = tasks
        self._on_added = on_added
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def watch(self, widget: QWidget) -> None:
        """Also take drops of .gguf files only on ``widget``, which takes drops itself (the
        composer: it would paste the file's path as text)."""
        widget.installEventFilter(self)

    def _wanted(self, watched: QObject, mime: QMimeData) -> list[Path]:
        paths = dropped_paths(mime)
        if watched is not self._window and not (
                paths and all(path.suffix.lower() == ".gguf" for path in paths)):
            return []
        return paths

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's API
        if isinstance(event, (QDragEnterEvent, QDragMoveEvent)):
            if self._wanted(watched, event.mimeData()):
                event.acceptProposedAction()
                return True
        elif isinstance(event, QDropEvent):
            paths = self._wanted(watched, event.mimeData())
            if paths:
                event.acceptProposedAction()
                self.import_dropped(paths)
                return True
        return super().eventFilter(watched, event)

    def import_dropped(self, paths: list[Path]) -> bool:
        """Import the .gguf files and folders among ``paths``; False if there were none."""
        models = [path for path in paths if _is_model(path)]
        others = [path for path in paths if not _is_model(path)]
        status = self._window.statusBar()
        if not models:
            status.showMessage(f"Not a GGUF model: {_names(others)}. Drop .gguf files to "
                               "import them.", STATUS_MS)
            return False
        status.showMessage(f"Importing {_names(models)}…")
        self._tasks.start(iter_import, self._store, [str(p) for p in models], "import",
                          on_returned=lambda report: self._done(report, others),
                          on_errored=lambda exc: status.showMessage(
                              f"Could not import: {exc}", STATUS_MS))
        return True

    def _done(self, report: ImportReport, others: list[Path]) -> None:
        added = [Path(record.path) for record in report.added]
        parts = [f"Imported {len(added)} model(s): {_names(added)}" if added
                 else "No model imported"]
        if report.skipped:  # "path: why"; the first reason says enough
            parts.append(f"skipped {len(report.skipped)} "
                         f"({report.skipped[0].rpartition(': ')[2]})")
        if report.errors:
            parts.append(report.errors[0] if len(report.errors) == 1
                         else f"{len(report.errors)} could not be read ({report.errors[0]})")
        if others:
            parts.append(f"not GGUF, left alone: {_names(others)}")
        self._window.statusBar().showMessage("; ".join(parts) + ".", STATUS_MS)
        if report.added:
            self._on_added()
