"""The chat's Documents section: which collections the chat answers from, adding files and
folders, indexing progress with Cancel, files that could not be read, and retrieval settings.

Collections are shared: a tick attaches one to the open chat, and any chat can tick it too.
Files added go into the selected collection; with none selected, into the chat's own one
(made on first use and named after the chat). A folder added is watched: it is indexed again
every `RESCAN_MS`, which costs a stat per file when nothing changed.

Names, paths and reasons come from the user's files: every label here is plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.engine.documents import SUPPORTED_EXTENSIONS
from app.engine.serving.pool import ModelPool
from app.models.document_records import CollectionRecord
from app.models.store import Store
from app.services.documents import (
    IndexProgress,
    IndexReport,
    collection_name_for,
    open_collection,
)
from app.services.documents.watched import forget_collection, watch_folder, watched_folders
from app.ui.documents.chunking_dialog import ask_chunking
from app.ui.documents.indexing import CollectionSource, IndexingJob
from app.ui.documents.progress_text import progress_text, report_text
from app.ui.documents.retrieval_row import RetrievalRow
from app.ui.plain_text import escaped_rich, plain_label

RESCAN_MS = 30_000
FAILURES_SHOWN = 4
CollectionRole = Qt.ItemDataRole.UserRole


class DocumentsPanel(QWidget):
    indexingChanged = Signal(bool)  # a run started (True) or ended

    def __init__(self, store: Store, pool: ModelPool, parent: QWidget | None = None,
                 *, models_dir: Path | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._models_dir = models_dir
        self._chat_id: int | None = None
        self._filling = False
        self._queue: list[tuple[CollectionSource, list[str]]] = []
        # Asked for a chat when files are added with none open (the page makes one).
        self.ensure_chat: Callable[[], int | None] = lambda: self._chat_id
        self.job = IndexingJob(store, pool, self)

        self.collections = QListWidget(self)
        self.collections.setMinimumHeight(60)
        self.collections.setMaximumHeight(120)
        # Name on one line, counts on the next, wrapped rather than cut at the panel's width.
        self.collections.setWordWrap(True)
        self.collections.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.collections.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.collections.setToolTip("Ticked collections are searched for this chat's questions")
        self.empty_hint = plain_label(
            "No collections yet. Add files or a folder and the chat answers from them, with "
            "citations; they are indexed here, offline.", parent=self)
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setStyleSheet("color: palette(placeholder-text);")
        self.add_files_button = QPushButton("Add files…", self)
        self.add_folder_button = QPushButton("Add folder…", self)
        self.more_button = QToolButton(self)
        self.more_button.setText("More")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.more_button)
        self.new_action = menu.addAction("New collection…", self._new_collection)
        self.chunking_action = menu.addAction("Chunk size and overlap…", self._edit_chunking)
        self.delete_action = menu.addAction("Delete collection…", self._delete_collection)
        self.more_button.setMenu(menu)
        self.retrieval = RetrievalRow(store, self)
        self.progress_bar = QProgressBar(self)
        self.progress_label = plain_label(parent=self)
        self.progress_label.setWordWrap(True)
        self.progress_label.hide()  # until there is progress or an outcome to tell
        self.cancel_button = QPushButton("Cancel", self)
        self.failures = plain_label(parent=self)
        self.failures.setWordWrap(True)
        self.failures.setStyleSheet("color: palette(placeholder-text);")
        self._build_layout()

        self.add_files_button.clicked.connect(self.add_files_dialog)
        self.add_folder_button.clicked.connect(self.add_folder_dialog)
        self.cancel_button.clicked.connect(self.job.cancel)
        self.collections.itemChanged.connect(self._on_item_changed)
        self.collections.currentItemChanged.connect(lambda *_: self._show_failures())
        self.job.progress.connect(self._on_progress)
        self.job.finished.connect(self._on_finished)
        self.job.failed.connect(self._on_failed)
        self._indexing: int | None = None  # the collection being indexed
        self.job.started.connect(self._on_started)
        self._rescan = QTimer(self)
        self._rescan.setInterval(RESCAN_MS)
        self._rescan.timeout.connect(self.rescan_watched)
        self._rescan.start()
        self._filling = False
        self._show_running(False)
        self.refresh()

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_files_button)
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.more_button)
        running = QHBoxLayout()
        running.addWidget(self.progress_bar, 1)
        running.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label("Documents", parent=self))
        layout.addWidget(self.collections)
        layout.addWidget(self.empty_hint)
        layout.addLayout(buttons)
        layout.addWidget(self.retrieval)
        layout.addLayout(running)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.failures)

    # -- state ---------------------------------------------------------------------------------
    def set_chat(self, chat_id: int | None) -> None:
        self._chat_id = chat_id
        self.refresh()

    def attached(self) -> list[CollectionRecord]:
        return self._store.chat_collections(self._chat_id) if self._chat_id is not None else []

    def selected_collection(self) -> CollectionRecord | None:
        item = self.collections.currentItem()
        return self._store.get_collection(item.data(CollectionRole)) if item else None

    def refresh(self) -> None:
        """The collections with their counts, ticked when attached to the open chat."""
        current = self.collections.currentItem()
        keep = current.data(CollectionRole) if current else None
        attached = {c.id for c in self.attached()}
        self._filling = True
        self.collections.clear()
        for collection in self._store.list_collections():
            item = QListWidgetItem(self._item_text(collection), self.collections)
            item.setData(CollectionRole, collection.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if collection.id in attached
                               else Qt.CheckState.Unchecked)
            item.setToolTip(f"Chunks of {collection.chunk_size} tokens with "
                            f"{collection.chunk_overlap} of overlap; embedded with "
                            f"{Path(collection.embedding_model).name}")
            if collection.id == keep:
                self.collections.setCurrentItem(item)
        self._filling = False
        empty = self.collections.count() == 0
        self.collections.setVisible(not empty)
        self.empty_hint.setVisible(empty)
        selected = self.selected_collection() is not None
        self.chunking_action.setEnabled(selected)
        self.delete_action.setEnabled(selected)
        self._show_failures()

    def _item_text(self, collection: CollectionRecord) -> str:
        indexed, failed, chunks = self._store.collection_counts(collection.id)
        text = f"{collection.name}\n{indexed} documents · {chunks} chunks"
        return text + (f" · {failed} unreadable" if failed else "")

    def _update_counts(self, collection_id: int) -> None:
        collection = self._store.get_collection(collection_id)
        for row in range(self.collections.count()):
            item = self.collections.item(row)
            if collection is not None and item.data(CollectionRole) == collection_id:
                self._filling = True
                item.setText(self._item_text(collection))
                self._filling = False

    def _show_failures(self) -> None:
        """Unreadable files of the selected collection, or of the chat's when none is."""
        selected = self.selected_collection()
        shown = [selected] if selected is not None else self.attached()
        failed = [d for c in shown for d in self._store.failed_documents(c.id)]
        if not failed:
            self.failures.setText("")
            self.failures.hide()
            return
        lines = [f"{Path(d.path).name}: {d.error}" for d in failed[:FAILURES_SHOWN]]
        if len(failed) > FAILURES_SHOWN:
            lines.append(f"and {len(failed) - FAILURES_SHOWN} more")
        self.failures.setText("Could not be read:\n" + "\n".join(lines))
        self.failures.show()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        chat_id = self._chat_id if self._chat_id is not None else self.ensure_chat()
        if chat_id is None:
            return
        collection_id = item.data(CollectionRole)
        if item.checkState() == Qt.CheckState.Checked:
            self._store.attach_collection(chat_id, collection_id)
        else:
            self._store.detach_collection(chat_id, collection_id)

    # -- adding --------------------------------------------------------------------------------
    def add_files_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
        paths, _ = QFileDialog.getOpenFileNames(self, "Add documents", "",
                                                f"Documents ({patterns})")
        if paths:
            self.add_paths(paths)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of documents")
        if folder:
            self.add_paths([folder])

    def add_paths(self, paths: Sequence[str]) -> bool:
        """Index files and folders into the selected collection (or the chat's own), which is
        attached to the chat; False when there is no chat to add them to."""
        chat_id = self._chat_id if self._chat_id is not None else self.ensure_chat()
        if chat_id is None:
            return False
        target = self.selected_collection()
        if target is None:
            attached = self.attached()
            target = attached[0] if len(attached) == 1 else None
        name = target.name if target is not None else collection_name_for(self._store, paths[0])
        store, models_dir = self._store, self._models_dir
        folders = [str(Path(p).absolute()) for p in paths if Path(p).is_dir()]

        def collection(store: Store = store) -> CollectionRecord:
            # On the job's thread: the first collection converts the starter embedding model.
            made = open_collection(store, name, models_dir=models_dir)
            store.attach_collection(chat_id, made.id)
            for folder in folders:
                watch_folder(store, made.id, folder)
            return made

        self._enqueue(collection, [str(p) for p in paths])
        return True

    def _enqueue(self, source: CollectionSource, paths: list[str]) -> None:
        self._queue.append((source, paths))
        self._next()

    def _next(self) -> None:
        if self.job.running or not self._queue:
            return
        source, paths = self._queue.pop(0)
        self.job.start(source, paths)
        self._show_running(True)
        self.progress_bar.setRange(0, 0)  # busy until the first progress says how many
        self.progress_label.setText("Preparing the embedding model…")
        self.progress_label.show()
        self.indexingChanged.emit(True)

    def rescan_watched(self) -> None:
        """Index the watched folders of the chat's collections again (new and changed files)."""
        if self.job.running:
            return
        for collection in self.attached():
            folders = [f for f in watched_folders(self._store, collection.id)
                       if Path(f).is_dir()]
            if folders:
                collection_id = collection.id
                self._enqueue(lambda store, cid=collection_id: store.get_collection(cid)
                              or _gone(cid), folders)

    # -- progress ------------------------------------------------------------------------------
    def _show_running(self, running: bool) -> None:
        for widget in (self.progress_bar, self.cancel_button):
            widget.setVisible(running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, p: IndexProgress) -> None:
        if p.documents_done != self.progress_bar.value() and self._indexing is not None:
            self._update_counts(self._indexing)  # the list's counts grow as documents finish
        self.progress_bar.setRange(0, max(1, p.documents_total))
        self.progress_bar.setValue(p.documents_done)
        self.progress_label.setText(progress_text(p))
        self.progress_label.show()

    def _on_started(self, collection_id: int) -> None:
        self._indexing = collection_id
        self.refresh()

    def _on_finished(self, _collection_id: int, report: IndexReport) -> None:
        self._indexing = None
        self._show_running(False)
        self.progress_label.setText(report_text(report))
        self.progress_label.show()
        self.refresh()
        self.indexingChanged.emit(False)
        self._next()

    def _on_failed(self, reason: str) -> None:
        self._indexing = None
        self._show_running(False)
        self.progress_label.setText(reason)
        self.progress_label.show()
        self.refresh()
        self.indexingChanged.emit(False)
        self._next()

    def shutdown(self) -> None:
        """The window is closing: stop indexing (what is finished stays)."""
        self._rescan.stop()
        self._queue.clear()
        self.job.cancel()
        self.job.wait(30)

    # -- collections ---------------------------------------------------------------------------
    def _new_collection(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        name, ok = QInputDialog.getText(self, "New collection", "Name:")
        if ok and name.strip():
            self.create_collection(name.strip())

    def create_collection(self, name: str) -> None:
        """Made (with the default embedding model) on the job's thread, attached to the chat."""
        chat_id = self._chat_id if self._chat_id is not None else self.ensure_chat()
        if chat_id is None:
            return
        store, models_dir = self._store, self._models_dir

        def collection(store: Store = store) -> CollectionRecord:
            made = open_collection(store, name, models_dir=models_dir)
            store.attach_collection(chat_id, made.id)
            return made

        self._enqueue(collection, [])

    def _edit_chunking(self) -> None:
        collection = self.selected_collection()
        if collection is None:
            return
        documents = len(self._store.list_documents(collection.id))
        chosen = ask_chunking(self, collection, documents)
        if chosen is not None:
            self.change_chunking(collection, *chosen)

    def change_chunking(self, collection: CollectionRecord, size: int, overlap: int) -> None:
        """New chunk settings, then every document of the collection indexed again."""
        self._store.set_chunking(collection.id, size, overlap)
        paths = [d.path for d in self._store.list_documents(collection.id)]
        paths += watched_folders(self._store, collection.id)
        collection_id = collection.id
        self._enqueue(lambda store: store.get_collection(collection_id) or _gone(collection_id),
                      paths)

    def _delete_collection(self) -> None:
        collection = self.selected_collection()
        if collection is None or self.job.running:
            return
        answer = QMessageBox.question(
            self, "Delete collection?",
            escaped_rich(f"Delete “{collection.name}” and its index? Your files stay where "
                         "they are; every chat using it stops answering from it."))
        if answer == QMessageBox.StandardButton.Yes:
            self._store.delete_collection(collection.id)
            forget_collection(self._store, collection.id)
            self.refresh()



def _gone(collection_id: int) -> CollectionRecord:
    raise LookupError(f"the collection (id {collection_id}) was deleted")
