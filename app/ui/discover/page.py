"""Discover: search the Hub for GGUF models, open one, see what fits, download it.

Every Hub call (search, file list, model card, download targets) runs on the page's
`TaskRunner`; results carry a generation number so a slow answer to an old query never
overwrites a newer one. Opening a repository waits for the selection to settle (arrowing through
the results starts no fetches), stops the fetch of the repository left behind, and keeps the last
few repositories' details, so going back to one shows it at once. An opened repository's
file list shows as soon as the Hub lists it; each fit badge and the card fill in as their own
fetch finishes. Downloads run in the
engine's `DownloadManager`, whose events reach the GUI thread through `DownloadBridge`. Errors
become a message in the banner, never a traceback.
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
from superqt.utils import WorkerBase

from app.engine.hub.api import FileTarget, HubModel, load_client
from app.engine.hub.api import search_models as hub_search
from app.engine.hub.downloads import DownloadEvent, download_key, part_path
from app.engine.hub.hf_token import get_token, load_keyring
from app.models.store import Store
from app.ui.discover.details import ModelDetails, RepoDetails
from app.ui.discover.details_cache import DetailsCache
from app.ui.discover.download_bridge import DownloadBridge
from app.ui.discover.downloads_panel import DownloadRow, DownloadsPanel
from app.ui.discover.jobs import DetailsUpdate, fetch_details, fetch_targets, user_message
from app.ui.discover.results import results_model
from app.ui.discover.suggestion import EmbeddingSuggestion
from app.ui.discover.token_dialog import TokenDialog
from app.ui.plain_text import plain_label
from app.ui.workers import TaskRunner

log = logging.getLogger(__name__)

DEBOUNCE_MS = 350
DETAILS_DEBOUNCE_MS = 250  # a selection must rest this long before its repository is fetched
SORTS = [("Most downloads", "downloads"), ("Most likes", "likes"),
         ("Recently updated", "lastModified")]


class DiscoverPage(QWidget):
    libraryChanged = Signal()  # a download finished and was added to the library

    def __init__(self, store: Store, models_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Now, not as the first search or download freezes the window.
        load_client()
        load_keyring()
        # Its own pool, so a slow search never waits behind the starter model's assembly.
        self.tasks = TaskRunner(self, max_threads=3)
        self.downloads = DownloadBridge(models_dir, store, self)
        self._search_generation = 0
        self._details_generation = 0
        self._details_worker: WorkerBase | None = None
        self._details_pending: HubModel | None = None
        self._details_cache = DetailsCache()
        self._open_when_found: str | None = None  # a repository to open once a search lists it

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
        # Both quote search words, repository and file names, and server errors: plain text.
        self.status = plain_label("Type to search Hugging Face for GGUF models.")
        self.status.setStyleSheet("color: #666;")
        self.error_banner = plain_label("")
        self.error_banner.setObjectName("discoverError")
        self.error_banner.setWordWrap(True)
        self.error_banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_banner.setStyleSheet(
            "background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0;"
            "border-radius: 4px; padding: 6px;")
        self.error_banner.hide()

        self.results_model = results_model(self)
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
        self.details = ModelDetails(models_dir)
        self.downloads_panel = DownloadsPanel()
        self.suggestion = EmbeddingSuggestion()

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
        layout.addWidget(self.suggestion)
        layout.addWidget(outer, 1)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search)
        self.search_box.textChanged.connect(self._debounce.start)
        self._details_timer = QTimer(self)
        self._details_timer.setSingleShot(True)
        self._details_timer.setInterval(DETAILS_DEBOUNCE_MS)
        self._details_timer.timeout.connect(self._open_pending)
        self.search_box.returnPressed.connect(self.search)
        self.sort_combo.currentIndexChanged.connect(self.search)
        self.results.selectionModel().selectionChanged.connect(self._result_selected)
        self.details.downloadRequested.connect(self.download)
        self.details.visionFound.connect(self.results_model.mark_vision)
        self.token_button.clicked.connect(self.edit_token)
        self.suggestion.searchRequested.connect(self.find_repo)
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

    def find_repo(self, repo_id: str) -> None:
        """Search for ``repo_id`` and open it when the results list it."""
        self._open_when_found = repo_id
        self.search_box.setText(repo_id)
        self.search()

    def _search_done(self, generation: int, found: list) -> None:
        if generation != self._search_generation:
            return
        self.error_banner.hide()
        self.results_model.set_records(found)
        wanted, self._open_when_found = self._open_when_found, None
        ids = [m.repo_id for m in found]
        if wanted in ids:
            self.results.selectRow(ids.index(wanted))
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
            self.select_repo(rows[0].row())

    def select_repo(self, row: int) -> None:
        """Show result ``row``: at once from the cache, else fetched once the selection rests."""
        model = self.results_model.record(row)
        self._stop_details()
        self.details.show_loading(model)
        cached = self._details_cache.get(model.repo_id)
        if cached is not None:
            self.details.show_details(cached)
            return
        self._details_pending = model
        self._details_timer.start()

    def open_repo(self, row: int) -> None:
        """Fetch result ``row``'s details now (no waiting, no cache)."""
        model = self.results_model.record(row)
        self._stop_details()
        self.details.show_loading(model)
        self._fetch_details(model)

    def _open_pending(self) -> None:
        model, self._details_pending = self._details_pending, None
        if model is not None:
            self._fetch_details(model)

    def _stop_details(self) -> None:
        """Forget the repository being opened: its answer is ignored and its job stops at its
        next stage (`fetch_details` yields between them)."""
        self._details_timer.stop()
        self._details_pending = None
        self._details_generation += 1
        if self._details_worker is not None:
            self._details_worker.quit()
            self._details_worker = None

    def _fetch_details(self, model: HubModel) -> None:
        self._details_generation += 1
        generation = self._details_generation
        self._details_worker = self.tasks.start(
            fetch_details, model.repo_id,
            on_yielded=lambda update: self._details_progress(generation, update),
            on_returned=lambda details: self._details_done(generation, details),
            on_errored=lambda exc: self._details_failed(generation, exc))

    def _details_progress(self, generation: int, update: DetailsUpdate | None) -> None:
        if generation == self._details_generation and update is not None:
            self.details.apply(update)

    def _details_done(self, generation: int, details: RepoDetails) -> None:
        self._details_cache.put(details)
        if generation == self._details_generation:
            self._details_worker = None
            self.error_banner.hide()
            self.details.finish(details)

    def _details_failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._details_generation:
            self._details_worker = None
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
                         on_errored=self._targets_failed)

    def _targets_failed(self, exc: BaseException) -> None:
        self.status.setText("")
        self.show_error(user_message(exc))

    def _targets_ready(self, result: tuple[list[FileTarget], str | None]) -> None:
        """Queue each target; a row appears only for a download the manager took, and a target
        it refused gets a failed row with the reason (Resume tries it again)."""
        targets, token = result
        panel = self.downloads_panel.model
        keys: list[str] = []
        errors: list[str] = []
        for target in targets:
            try:
                key = self.downloads.add([target], token)[0]
            except Exception as exc:  # DownloadError (a name that escapes the folder) or OSError
                log.warning("could not queue %s/%s", target.repo_id, target.filename,
                            exc_info=exc)
                message = str(exc) or type(exc).__name__
                errors.append(message)
                panel.ensure(DownloadRow(download_key(target.repo_id, target.filename),
                                         target.repo_id, target.filename, target.size,
                                         kind="failed", message=message, retry=target))
                continue
            keys.append(key)
            index = panel.row_of(key)
            if index < 0 or not panel.rows[index].active:
                panel.ensure(DownloadRow(key, target.repo_id, target.filename, target.size))
        if keys:
            self.status.setText(f"Downloading {len(keys)} file{'s' if len(keys) > 1 else ''}"
                                " (see Downloads below).")
            self.downloads_panel.select_key(keys[0])
        else:
            self.status.setText("")
        if errors:
            self.show_error("\n".join(errors))

    def _download_event(self, event: DownloadEvent) -> None:
        self.downloads_panel.model.apply(event)
        if event.kind == "failed":
            self.show_error(event.message)

    def _download_completed(self, path: str) -> None:
        self.status.setText(f"Downloaded {Path(path).name}; it is in My Models.")
        self.details.refresh_downloaded()
        self.libraryChanged.emit()

    def _show_unfinished(self) -> None:
        for record in self.downloads.unfinished():
            part = part_path(Path(record.dest))
            failed = record.status == "failed"
            row = DownloadRow(record.key, record.repo_id, record.filename, record.size,
                              part.stat().st_size if part.exists() else 0,
                              kind="failed" if failed else "paused",
                              message=(record.error or "") if failed else "", earlier=record)
            self.downloads_panel.model.ensure(row)

    def _not_started(self, key: str) -> DownloadRow | None:
        """The row of ``key`` when the manager has no job for it: left by an earlier run, or
        refused when it was added."""
        index = self.downloads_panel.model.row_of(key)
        row = self.downloads_panel.model.rows[index] if index >= 0 else None
        if row is None or (row.earlier is None and row.retry is None):
            return None
        return row

    def _resume(self, key: str) -> None:
        row = self._not_started(key)
        if row is None:
            self.downloads.resume(key)
            return
        target = row.retry
        if target is None:
            record = row.earlier
            assert record is not None
            target = FileTarget(record.repo_id, record.filename, record.revision, record.url,
                                record.size, record.sha256)
        self.tasks.start(get_token,
                         on_returned=lambda token: self._targets_ready(([target], token)),
                         on_errored=lambda exc: self._resume_failed(target, exc))

    def _resume_failed(self, target: FileTarget, exc: BaseException) -> None:
        self.status.setText("")
        self.show_error(f"{target.filename} could not be resumed: the Hub token could not be "
                        f"read ({exc or type(exc).__name__}).")

    def _cancel(self, key: str) -> None:
        row = self._not_started(key)
        if row is None:
            self.downloads.cancel(key)
            return
        if row.earlier is not None:
            self.downloads.forget(row.earlier)
        row.kind, row.done, row.message, row.earlier, row.retry = "cancelled", 0, "", None, None
        self.downloads_panel.model.ensure(row)

    def shutdown(self) -> None:
        """Pause downloads (resumed on the next launch) and stop the page's background jobs."""
        self._debounce.stop()
        self._stop_details()
        self.downloads.close()
        if not self.tasks.shutdown():
            log.warning("Discover jobs still running at close")
