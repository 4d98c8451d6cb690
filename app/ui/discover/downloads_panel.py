"""The Downloads panel: a row per file with a progress bar, speed, ETA, Pause/Resume/Cancel.

Rows change through `apply(event)`, which touches only the row of that event (one
`dataChanged`), so two downloads at ten events a second each cost almost nothing to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.engine.hub.api import FileTarget
from app.engine.hub.downloads import DownloadEvent, DownloadRecord
from app.engine.units import human_bytes

_Index = QModelIndex | QPersistentModelIndex
HEADERS = ["File", "Progress", "Speed", "ETA", "Status"]
PROGRESS_COLUMN = 1
_STATUS = {"queued": "Queued", "started": "Downloading", "progress": "Downloading",
           "paused": "Paused", "done": "Done", "cancelled": "Cancelled"}


def eta_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class DownloadRow:
    key: str
    repo_id: str
    filename: str
    total: int
    done: int = 0
    speed: float = 0.0
    eta: float | None = None
    kind: str = "queued"  # the last event's kind
    message: str = ""
    checked: float = 0.0  # while verifying: the fraction of the file hashed
    earlier: DownloadRecord | None = None  # left by an earlier run, not started in this one
    retry: FileTarget | None = None  # the manager refused it when added; Resume adds it again

    @property
    def status(self) -> str:
        if self.kind == "failed":
            return f"Failed: {self.message}"
        if self.kind == "retrying":
            return f"Retrying: {self.message}"
        if self.kind == "verifying":
            return f"Verifying… {self.checked:.0%}"
        if self.kind == "paused" and self.message:  # disk full, or busy in another window
            return f"Paused: {self.message}"
        return _STATUS.get(self.kind, self.kind)

    @property
    def active(self) -> bool:
        return self.kind in ("queued", "started", "progress", "retrying", "verifying")


class DownloadsModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[DownloadRow] = []
        self._by_key: dict[str, int] = {}

    def row_of(self, key: str) -> int:
        return self._by_key.get(key, -1)

    def ensure(self, row: DownloadRow) -> int:
        """Add ``row`` unless its key is listed; a repeated download reuses its row."""
        index = self.row_of(row.key)
        if index >= 0:
            self.rows[index] = row
            self.dataChanged.emit(self.index(index, 0), self.index(index, len(HEADERS) - 1))
            return index
        index = len(self.rows)
        self.beginInsertRows(QModelIndex(), index, index)
        self.rows.append(row)
        self._by_key[row.key] = index
        self.endInsertRows()
        return index

    def apply(self, event: DownloadEvent) -> None:
        index = self.row_of(event.key)
        if index < 0:
            owner, name, filename = event.key.split("/", 2)  # download_key's layout
            index = self.ensure(DownloadRow(event.key, f"{owner}/{name}", filename, event.total))
        row = self.rows[index]
        row.kind, row.message = event.kind, event.message
        if event.kind == "verifying":  # counts hashed bytes, not the file's: keep the bar
            row.checked = event.done / event.total if event.total else 1.0
            row.speed, row.eta = 0.0, None
            row.earlier = row.retry = None
            self.dataChanged.emit(self.index(index, 0), self.index(index, len(HEADERS) - 1))
            return
        row.total = event.total or row.total
        row.done = event.done if event.kind != "cancelled" else 0
        row.speed = event.speed if event.kind == "progress" else 0.0
        row.eta = event.eta if event.kind == "progress" else None
        row.earlier = row.retry = None
        self.dataChanged.emit(self.index(index, 0), self.index(index, len(HEADERS) - 1))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return row.filename
            if column == PROGRESS_COLUMN:
                return f"{human_bytes(row.done)} / {human_bytes(row.total)}"
            if column == 2:
                return f"{human_bytes(int(row.speed))}/s" if row.speed else ""
            if column == 3:
                return eta_text(row.eta) if row.eta is not None else ""
            return row.status
        if role == Qt.ItemDataRole.UserRole and column == PROGRESS_COLUMN:
            return int(1000 * row.done / row.total) if row.total else 0
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{row.repo_id}/{row.filename}\n{row.status}"
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None


class ProgressDelegate(QStyledItemDelegate):
    """Draws the Progress column as a native progress bar with the byte counts on it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 3, -2, -3)  # type: ignore[attr-defined]
        bar.minimum, bar.maximum = 0, 1000
        bar.progress = int(index.data(Qt.ItemDataRole.UserRole) or 0)
        bar.text = str(index.data(Qt.ItemDataRole.DisplayRole))
        bar.textVisible = True
        # Without State_Horizontal Qt 6 styles draw the chunk as if the bar were vertical.
        bar.state = option.state | QStyle.StateFlag.State_Horizontal  # type: ignore[attr-defined]
        style = option.widget.style() if option.widget else QApplication.style()  # type: ignore[attr-defined]
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)


class DownloadsPanel(QWidget):
    """The table plus buttons that act on the selected row."""

    pauseRequested = Signal(str)
    resumeRequested = Signal(str)
    cancelRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = DownloadsModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("downloadsTable")
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(PROGRESS_COLUMN, ProgressDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setColumnWidth(0, 260)
        self.table.setColumnWidth(PROGRESS_COLUMN, 240)
        self.table.setColumnWidth(2, 90)
        self.table.setColumnWidth(3, 60)

        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel")
        title = QLabel("<b>Downloads</b>")
        buttons = QHBoxLayout()
        buttons.addWidget(title)
        buttons.addStretch(1)
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)

        self.pause_button.clicked.connect(lambda: self._act(self.pauseRequested))
        self.resume_button.clicked.connect(lambda: self._act(self.resumeRequested))
        self.cancel_button.clicked.connect(lambda: self._act(self.cancelRequested))
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        self._update_buttons()

    def selected(self) -> DownloadRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()] if rows else None

    def select_key(self, key: str) -> None:
        index = self.model.row_of(key)
        if index >= 0:
            self.table.selectRow(index)

    def _act(self, signal: Any) -> None:
        row = self.selected()
        if row is not None:
            signal.emit(row.key)

    def _update_buttons(self) -> None:
        row = self.selected()
        self.pause_button.setEnabled(row is not None and row.active)
        self.resume_button.setEnabled(row is not None and row.kind in ("paused", "failed"))
        self.cancel_button.setEnabled(
            row is not None and (row.active or row.kind in ("paused", "failed")))
