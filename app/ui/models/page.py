"""My Models: the GGUF files in the library, their metadata, import, find, load and delete.

Imports and folder scans run off the GUI thread through `TaskRunner`; reading a header is quick,
but a folder of big models on a slow disk is not. Errors come back as one message box.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import (
    QItemSelectionModel,
    QSignalBlocker,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.records import LineageRecord, ModelFileRecord, ModelSource
from app.models.store import Store
from app.services.library import (
    ImportProgress,
    ImportReport,
    find_unindexed,
    in_models_folder,
    iter_import,
    known_model_folders,
    remove_model,
)
from app.ui.column_table import SORT_ROLE, ColumnTableModel
from app.ui.load_settings_dialog import LoadSettingsDialog, open_load_settings
from app.ui.models.columns import model_columns
from app.ui.models.details import details_text
from app.ui.models.dialogs import ask_delete, choose_models_to_index
from app.ui.models.projector_menu import ProjectorMenu
from app.ui.page_chrome import page_title
from app.ui.plain_text import escaped_rich, plain_label
from app.ui.quantize.dialog import QuantizeDialog
from app.ui.quantize.report_view import QualityReportDialog
from app.ui.workers import TaskRunner

_MAX_ERRORS_SHOWN = 8  # a folder of broken files must not make a message box taller than the screen


def _scan_known_folders(store: Store) -> tuple[list[Path], list[Path]]:
    folders = known_model_folders()
    return folders, find_unindexed(store, folders)


class ModelsPage(QWidget):
    loadRequested = Signal(str)  # path of the model to load in the chat page
    libraryChanged = Signal()  # models were added or removed

    def __init__(self, store: Store, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._tasks = tasks
        self._busy = False
        self._reported: set[str] = set()  # paths that have a quality report
        self._lineage: dict[str, LineageRecord] = {}
        self._quantize_dialogs: dict[str, QuantizeDialog] = {}  # by source path
        self.projector_menu = ProjectorMenu(store, tasks, self)
        self.projector_menu.changed.connect(self._projectors_changed)

        self.import_file_button = QPushButton("Import file…")
        self.import_folder_button = QPushButton("Import folder…")
        self.find_button = QPushButton("Find models from LM Studio / Hugging Face cache")
        self.load_button = QPushButton("Load in chat")
        self.settings_button = QPushButton("Load settings…")
        self.delete_button = QPushButton("Delete")
        self.quantize_button = QPushButton("Quantize…")
        self.report_button = QPushButton("Quality report…")
        self.import_file_button.clicked.connect(self.choose_files)
        self.import_folder_button.clicked.connect(self.choose_folder)
        self.find_button.clicked.connect(self.find_models)
        self.load_button.clicked.connect(self.load_selected)
        self.settings_button.clicked.connect(self.edit_load_settings)
        self.delete_button.clicked.connect(self.delete_selected)
        self.quantize_button.clicked.connect(self.quantize_selected)
        self.report_button.clicked.connect(self.show_quality_report)

        self.table_model = ColumnTableModel(model_columns(self.projector_menu.is_vision),
                                            lambda r: r.path, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.table_model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # One line per model: long paths are elided in the middle (full path in the tooltip)
        # rather than wrapped at their hyphens into taller rows.
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(self.load_selected)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)

        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.status_label = plain_label()  # quotes file and model names

        buttons = QHBoxLayout()
        for button in (self.import_file_button, self.import_folder_button, self.find_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.quantize_button)
        buttons.addWidget(self.report_button)
        buttons.addWidget(self.projector_menu.button)
        buttons.addWidget(self.settings_button)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.delete_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        title = page_title("My Models")
        layout.addWidget(title)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status_label)
        self.refresh()

    # -- library -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the table from the Store, keeping the selected model selected."""
        current = self.selected_record()
        self.table_model.set_records(self._store.list_model_files())
        # Read once per refresh, not per click: what has a report, where quantized models came from.
        self._reported = self._store.quality_report_paths()
        self._lineage = self._store.list_lineage()
        # Pairing reads the headers of the files beside each model: off the GUI thread.
        self.projector_menu.refresh([r.path for r in self.table_model_records()])
        # Keep the selection; otherwise show the first model's details rather than an empty pane.
        # Signals stay blocked meanwhile so the details are drawn once, below.
        with QSignalBlocker(self.table.selectionModel()):
            if current is None or not self.select_path(current.path):
                first = self.table_model.record(0) if self.table_model.rowCount() else None
                if first is not None:
                    self.select_path(first.path)
        self._selection_changed()

    def selected_record(self) -> ModelFileRecord | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table_model.record(self.proxy.mapToSource(rows[0]).row())

    def select_path(self, path: str) -> bool:
        row = self.table_model.row_where(lambda r: r.path == path)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.table_model.index(row, 0))
        self.table.selectionModel().select(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(index)
        return True

    def _selection_changed(self) -> None:
        record = self.selected_record()
        self.load_button.setEnabled(record is not None)
        self.settings_button.setEnabled(record is not None)
        self.delete_button.setEnabled(record is not None)
        self.quantize_button.setEnabled(record is not None)
        self.report_button.setEnabled(record is not None and record.path in self._reported)
        self.projector_menu.select(record.path if record is not None else None)
        lineage = self._lineage.get(record.path) if record is not None else None
        projector = self.projector_menu.choice(record.path) if record is not None else None
        self.details.setPlainText(
            details_text(record, lineage, self.table_model.rowCount() == 0, projector)
        )

    def table_model_records(self) -> list[ModelFileRecord]:
        return [self.table_model.record(r) for r in range(self.table_model.rowCount())]

    def _projectors_changed(self, user_choice: bool) -> None:
        """New pairings: redraw the Vision column and the details; a user's pick changes what
        the chat's picker marks too."""
        rows = self.table_model.rowCount()
        if rows:
            column = self.table_model.columnCount() - 1
            self.table_model.dataChanged.emit(self.table_model.index(0, 0),
                                              self.table_model.index(rows - 1, column))
        self._selection_changed()
        if user_choice:
            self.libraryChanged.emit()

    # -- import --------------------------------------------------------------------------------
    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Import GGUF models", str(Path.home()), "GGUF models (*.gguf);;All files (*)"
        )
        if paths:
            self.import_paths(paths)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Import every GGUF model in a folder", str(Path.home())
        )
        if folder:
            self.import_paths([folder])

    def import_paths(self, paths: list[str] | list[Path], source: ModelSource = "import") -> None:
        """Index files and folders in the background; the table updates when it is done."""
        if self._busy:
            return
        self._set_busy(True, "Importing…")
        self._tasks.start(
            iter_import, self._store, [str(p) for p in paths], source,
            on_yielded=self._import_progress,
            on_returned=self._import_done,
            on_errored=self._job_failed,
        )

    def _import_progress(self, step: ImportProgress) -> None:
        self.status_label.setText(f"Reading {step.done} of {step.total}: {step.path.name}")

    def _import_done(self, report: ImportReport) -> None:
        self._set_busy(False)
        self.refresh()
        if report.added:
            self.select_path(report.added[0].path)
            self.libraryChanged.emit()
        summary = f"Added {len(report.added)} model(s)"
        if report.skipped:
            summary += f", skipped {len(report.skipped)}"
        self.status_label.setText(summary + ".")
        if report.errors:
            title = "Could not import" if not report.added else "Some files were not imported"
            shown = report.errors[:_MAX_ERRORS_SHOWN]
            if len(report.errors) > len(shown):
                shown.append(f"… and {len(report.errors) - len(shown)} more.")
            QMessageBox.warning(self, title, escaped_rich("\n\n".join(shown)))

    def _job_failed(self, exc: BaseException) -> None:
        self._set_busy(False, "")
        QMessageBox.critical(self, "Something went wrong",
                             escaped_rich(f"{exc}\n\nDetails are in the log."))

    def _set_busy(self, busy: bool, message: str | None = None) -> None:
        # Cleared by the job's returned/errored handler: each job ends with exactly one of them
        # (a job is only aborted when the window closes).
        self._busy = busy
        for button in (self.import_file_button, self.import_folder_button, self.find_button):
            button.setEnabled(not busy)
        if message is not None:
            self.status_label.setText(message)

    # -- find ----------------------------------------------------------------------------------
    def find_models(self) -> None:
        if self._busy:
            return
        self._set_busy(True, "Looking in LM Studio's and Hugging Face's model folders…")
        self._tasks.start(
            _scan_known_folders, self._store,
            on_returned=self._scan_done,
            on_errored=self._job_failed,
        )

    def _scan_done(self, result: tuple[list[Path], list[Path]]) -> None:
        folders, found = result
        self._set_busy(False, "")
        if not folders:
            QMessageBox.information(
                self, "No model folders found",
                "Neither LM Studio (~/.lmstudio/models) nor the Hugging Face cache "
                "(~/.cache/huggingface/hub) has a model folder on this computer.",
            )
            return
        if not found:
            where = "\n".join(str(f) for f in folders)
            QMessageBox.information(
                self, "Nothing new",
                escaped_rich(f"Every model in these folders is already indexed:\n{where}"),
            )
            return
        chosen = choose_models_to_index(self, found)
        if chosen:
            self.import_paths(chosen, source="indexed")

    # -- load and delete -----------------------------------------------------------------------
    def load_selected(self) -> None:
        record = self.selected_record()
        if record is None:
            return
        if not Path(record.path).is_file():
            QMessageBox.warning(
                self, "Model file missing",
                escaped_rich(f"{record.path} no longer exists. Delete the entry or import the "
                             "file again."),
            )
            return
        self.loadRequested.emit(record.path)

    def edit_load_settings(self) -> LoadSettingsDialog | None:
        """Open the selected model's load settings (used the next time it is loaded)."""
        record = self.selected_record()
        if record is None:
            return None
        return open_load_settings(self._store, record.info, self)

    def delete_selected(self) -> None:
        record = self.selected_record()
        if record is None:
            return
        delete_file = ask_delete(self, record, in_models_folder(record.path))
        if delete_file is None:
            return
        try:
            remove_model(self._store, record, delete_file)
        except OSError as exc:
            QMessageBox.warning(
                self, "Could not delete the file",
                escaped_rich(f"{record.path}: {exc.strerror or exc}"),
            )
            return
        self.refresh()
        self.libraryChanged.emit()
        self.status_label.setText(f"Removed {record.name}.")

    # -- quantize ------------------------------------------------------------------------------
    def quantize_selected(self) -> QuantizeDialog | None:
        """Open the quantize dialog for the selected model (not modal: the window stays usable)."""
        record = self.selected_record()
        if record is None:
            return None
        if not Path(record.path).is_file():
            QMessageBox.warning(self, "Model file missing",
                                escaped_rich(f"{record.path} no longer exists."))
            return None
        # One dialog per model: a second would quantize the same file to the same outputs.
        dialog = self._quantize_dialogs.get(record.path)
        if dialog is None or dialog.closing:
            dialog = QuantizeDialog(self._store, record.info, self)
            dialog.libraryChanged.connect(self._quantized)
            dialog.reportSaved.connect(self.refresh)
            dialog.destroyed.connect(partial(self._forget_dialog, record.path, dialog))
            self._quantize_dialogs[record.path] = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _forget_dialog(self, path: str, dialog: QuantizeDialog, _destroyed: object = None) -> None:
        if self._quantize_dialogs.get(path) is dialog:
            del self._quantize_dialogs[path]

    def _quantized(self) -> None:
        self.refresh()
        self.libraryChanged.emit()

    def show_quality_report(self) -> QualityReportDialog | None:
        record = self.selected_record()
        saved = self._store.latest_quality_report(record.path) if record else None
        if saved is None:
            return None
        dialog = QualityReportDialog(saved.report, self)
        dialog.show()
        return dialog
