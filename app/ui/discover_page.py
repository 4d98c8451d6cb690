"""Discover: search the Hub for GGUF models, open one, see what fits, download it.

Every Hub call (search, file list, model card, hardware probe, download targets) runs on the
page's `TaskRunner`; results carry a generation number so a slow answer to an old query never
overwrites a newer one. Downloads run in the engine's `DownloadManager`, whose events reach the
GUI thread through `DownloadBridge`. Errors become a message in the banner, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QItemSelection, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.engine.downloads import DownloadEvent
from app.engine.hub import FileTarget
from app.engine.hub import search_models as hub_search
from app.engine.hub_token import get_token
from app.models.store import Store
from app.ui.discover.details import ModelDetails, RepoDetails
from app.ui.discover.downloads_panel import DownloadRow, DownloadsPanel
from app.ui.discover.jobs import fetch_details, fetch_targets, user_message
from app.ui.discover.results import ResultsModel
from app.ui.discover.token_dialog import TokenDialog
from app.ui.download_bridge import DownloadBridge
from app.ui.workers import TaskRunner

log = logging.getLogger(__name__)

DEBOUNCE_MS = 350
SORTS = [("Most downloads", "downloads"), ("Most likes", "likes"),
         ("Recently updated", "lastModified")]


class DiscoverPage(QWidget):
    libraryChanged = Signal()  # a download finished and was added to the library

    def __init__(self, store: Store, models_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Its own pool, so a slow search never waits behind the starter model's assembly.
        self.tasks = TaskRunner(self, max_threads=3)
        self.downloads = DownloadBridge(models_dir, store, self)
        self._search_generation = 0
        self._details_generation = 0

        self.search_box = QLineEdit()
        self.search_box.setObjectName("discoverSearch")
        self.search_box.setPlaceholderText("Search Hugging Face for GGUF models (e.g. qwen, gemma)")
        self.search_box.setClearButtonEnabled(True)
        self.sort_combo = QComboBox()
        for label, key in SORTS:
            self.sort_combo.addItem(label, key)
        self.token_button = QPushButton("Hub token…")
        self.token_button.setObjectName("hubTokenButton")
        self.token_button.setToolTip("Set the Hugging Face token used for gated models")
        self.token_dialog: TokenDialog | None = None
        self.status = QLabel("Type to search Hugging Face for GGUF models.")
        self.status.setStyleSheet("color: #666;")
        self.error_banner = QLabel("")
        self.error_banner.setObjectName("discoverError")
        self.error_banner.setWordWrap(True)
        self.error_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_banner.setStyleSheet(
            "background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0;"
            "border-radius: 4px; padding: 6px;")
        self.error_banner.hide()

        self.results_model = ResultsModel(self)
        self.results = QTableView()
        self.results.setObjectName("discoverResults")
        self.results.setModel(self.results_model)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.verticalHeader().hide()
        self.results.setWordWrap(False)
        self.results.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.details = ModelDetails()
        self.downloads_panel = DownloadsPanel()

        bar = QHBoxLayout()
        bar.addWidget(self.search_box, 1)
        bar.addWidget(QLabel("Sort:"))
        bar.addWidget(self.sort_combo)
        bar.addWidget(self.token_button)
        browse = QSplitter(Qt.Orientation.Horizontal)
        browse.addWidget(self.results)
        browse.addWidget(self.details)
        browse.setStretchFactor(0, 1)
        browse.setStretchFactor(1, 1)
        browse.setSizes([740, 520])
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(browse)
        outer.addWidget(self.downloads_panel)
        outer.setStretchFactor(0, 3)
        outer.setStretchFactor(1, 1)
        outer.setSizes([560, 200])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.error_banner)
        layout.addWidget(self.status)
        layout.addWidget(outer, 1)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search)
        self.search_box.textChanged.connect(self._debounce.start)
        self.search_box.returnPressed.connect(self.search)
        self.sort_combo.currentIndexChanged.connect(self.search)
        self.results.selectionModel().selectionChanged.connect(self._result_selected)
        self.details.downloadRequested.connect(self.download)
        self.token_button.clicked.connect(self.edit_token)
        self.downloads.event.connect(self._download_event)
        self.downloads.completed.connect(self._download_completed)
        self.downloads_panel.pauseRequested.connect(self.downloads.pause)
        self.downloads_panel.resumeRequested.connect(self._resume)
        self.downloads_panel.cancelRequested.connect(self._cancel)
        self._show_unfinished()

    # -- search --------------------------------------------------------------------------------
    def search(self) -> None:
        self._debounce.stop()
        self._search_generation += 1
        generation = self._search_generation
        query = self.search_box.text().strip()
        sort = self.sort_combo.currentData()
        self.status.setText(f"Searching for {query!r}…" if query else "Loading popular models…")
        self.tasks.start(
            hub_search, query, sort,
            on_returned=lambda found: self._search_done(generation, found),
            on_errored=lambda exc: self._search_failed(generation, exc))

    def _search_done(self, generation: int, found: list) -> None:
        if generation != self._search_generation:
            return
        self.error_banner.hide()
        self.results_model.set_results(found)
        self.status.setText(f"{len(found)} GGUF repositories" if found
                            else "No GGUF repositories match.")

    def _search_failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._search_generation:
            self.status.setText("")
            self.show_error(user_message(exc))

    def show_error(self, message: str) -> None:
        self.error_banner.setText(message)
        self.error_banner.show()

    # -- one repository ------------------------------------------------------------------------
    def _result_selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = selected.indexes()
        if rows:
            self.open_repo(rows[0].row())

    def open_repo(self, row: int) -> None:
        model = self.results_model.model_at(row)
        self._details_generation += 1
        generation = self._details_generation
        self.details.show_loading(model)
        self.tasks.start(
            fetch_details, model.repo_id,
            on_returned=lambda details: self._details_done(generation, details),
            on_errored=lambda exc: self._details_failed(generation, exc))

    def _details_done(self, generation: int, details: RepoDetails) -> None:
        if generation == self._details_generation:
            self.error_banner.hide()
            self.details.show_details(details)

    def _details_failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._details_generation:
            message = user_message(exc)
            self.details.show_error(message)
            self.show_error(message)

    # -- Hub token -----------------------------------------------------------------------------
    def edit_token(self) -> TokenDialog:
        """Open the token dialog (created once and kept, see `TokenDialog`)."""
        if self.token_dialog is None:
            self.token_dialog = TokenDialog(self.tasks, self)
            self.token_dialog.tokenChanged.connect(self.downloads.set_token)
        self.token_dialog.open_and_refresh()
        return self.token_dialog

    # -- downloads -----------------------------------------------------------------------------
    def download(self, repo_id: str, names: list[str]) -> None:
        self.status.setText(f"Preparing the download of {', '.join(names)}…")
        self.tasks.start(fetch_targets, repo_id, names,
                         on_returned=self._targets_ready,
                         on_errored=lambda exc: self.show_error(user_message(exc)))

    def _targets_ready(self, result: tuple[list[FileTarget], str | None]) -> None:
        targets, token = result
        self.status.setText(f"Downloading {len(targets)} file{'s' if len(targets) > 1 else ''}"
                            " (see Downloads below).")
        for target in targets:
            key = f"{target.repo_id}/{target.filename}"
            self.downloads_panel.model.ensure(
                DownloadRow(key, target.repo_id, target.filename, target.size))
        try:
            keys = self.downloads.add(targets, token)
        except Exception as exc:  # DownloadError (a name that escapes the folder) or OSError
            self.show_error(str(exc))
            return
        if keys:
            self.downloads_panel.select_key(keys[0])

    def _download_event(self, event: DownloadEvent) -> None:
        self.downloads_panel.model.apply(event)
        if event.kind == "failed":
            self.show_error(event.message)

    def _download_completed(self, path: str) -> None:
        self.status.setText(f"Downloaded {Path(path).name}; it is in My Models.")
        self.libraryChanged.emit()

    def _show_unfinished(self) -> None:
        for record in self.downloads.unfinished():
            done = Path(record.dest + ".part")
            row = DownloadRow(record.key, record.repo_id, record.filename, record.size,
                              done.stat().st_size if done.exists() else 0, kind="paused",
                              earlier=record)
            self.downloads_panel.model.ensure(row)

    def _earlier(self, key: str) -> DownloadRow | None:
        index = self.downloads_panel.model.row_of(key)
        row = self.downloads_panel.model.rows[index] if index >= 0 else None
        return row if row is not None and row.earlier is not None else None

    def _resume(self, key: str) -> None:
        row = self._earlier(key)
        if row is None:
            self.downloads.resume(key)
            return
        record = row.earlier
        assert record is not None
        target = FileTarget(record.repo_id, record.filename, record.revision, record.url,
                            record.size, record.sha256)
        self.tasks.start(get_token,
                         on_returned=lambda token: self._targets_ready(([target], token)))

    def _cancel(self, key: str) -> None:
        row = self._earlier(key)
        if row is None:
            self.downloads.cancel(key)
            return
        assert row.earlier is not None
        self.downloads.forget(row.earlier)
        row.kind, row.done, row.earlier = "cancelled", 0, None
        self.downloads_panel.model.ensure(row)

    def shutdown(self) -> None:
        """Pause downloads (resumed on the next launch) and stop the page's background jobs."""
        self._debounce.stop()
        self.downloads.close()
        if not self.tasks.shutdown():
            log.warning("Discover jobs still running at close")
