"""The quantize dialog's list of target types: tick the ones to make, see each one's predicted
size, whether it would fit this machine, and the file it would be written to."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.engine.gguf.quant_types import QuantType
from app.engine.units import human_bytes
from app.ui.quantize.jobs import Prediction

HEADERS = ["Type", "Description", "Predicted size", "On this machine", "Output file"]
TYPE, DESCRIPTION, SIZE, FIT, OUTPUT = range(len(HEADERS))
PENDING = "…"
_TOO_LARGE = QColor(190, 40, 40)


class TargetTable(QTableWidget):
    checkedChanged = Signal()

    def __init__(self, output_name: Callable[[str], str], parent: QWidget | None = None) -> None:
        super().__init__(0, len(HEADERS), parent)
        self._output_name = output_name
        self._types: list[QuantType] = []
        self._predictions: dict[str, Prediction] = {}
        self.setHorizontalHeaderLabels(HEADERS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(DESCRIPTION, QHeaderView.ResizeMode.Stretch)
        self.itemChanged.connect(self._item_changed)
        self.cellClicked.connect(self._toggle_row)

    # -- rows ----------------------------------------------------------------------------------
    def set_types(self, types: Sequence[QuantType]) -> None:
        """Show ``types``, keeping the ticks of those that stay."""
        checked = set(self.checked_types())
        self._types = list(types)
        self.blockSignals(True)
        self.setRowCount(len(self._types))
        for row, quant in enumerate(self._types):
            name = QTableWidgetItem(quant.name)
            name.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            name.setCheckState(Qt.CheckState.Checked if quant.name in checked
                               else Qt.CheckState.Unchecked)
            self.setItem(row, TYPE, name)
            self.setItem(row, DESCRIPTION, QTableWidgetItem(quant.description))
            for column in (SIZE, FIT, OUTPUT):
                self.setItem(row, column, QTableWidgetItem())
            self._fill(row)
        self.blockSignals(False)
        self.checkedChanged.emit()

    def type_names(self) -> list[str]:
        return [t.name for t in self._types]

    def checked_types(self) -> list[str]:
        return [self._types[row].name for row in range(self.rowCount())
                if self.item(row, TYPE).checkState() == Qt.CheckState.Checked]

    def set_checked_types(self, names: Sequence[str]) -> None:
        wanted = set(names)
        unknown = wanted - set(self.type_names())
        if unknown:
            raise ValueError(f"Not offered here: {', '.join(sorted(unknown))}")
        self.blockSignals(True)
        for row, quant in enumerate(self._types):
            self.item(row, TYPE).setCheckState(
                Qt.CheckState.Checked if quant.name in wanted else Qt.CheckState.Unchecked)
        self.blockSignals(False)
        self.checkedChanged.emit()

    def missing_predictions(self) -> list[QuantType]:
        return [t for t in self._types if t.name not in self._predictions]

    def predicted_sizes(self) -> dict[str, int | None]:
        return {name: p.size for name, p in self._predictions.items()}

    def set_predictions(self, predictions: dict[str, Prediction]) -> None:
        self._predictions.update(predictions)
        self.refresh_outputs()

    def cell_text(self, type_name: str, column: int) -> str:
        return self.item(self.type_names().index(type_name), column).text()

    def refresh_outputs(self) -> None:
        """Redraw every row's predicted size, fit and output name."""
        self.blockSignals(True)
        for row in range(self.rowCount()):
            self._fill(row)
        self.blockSignals(False)

    def _fill(self, row: int) -> None:
        quant = self._types[row]
        prediction = self._predictions.get(quant.name)
        size, fit = self.item(row, SIZE), self.item(row, FIT)
        size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if prediction is None:
            size.setText(PENDING)
            fit.setText(PENDING)
        elif prediction.size is None:
            size.setText("unknown")
            size.setToolTip("llama.cpp's dry run could not predict this size.")
            fit.setText("unknown")
        else:
            size.setText(human_bytes(prediction.size))
            badge = prediction.fit
            fit.setText(badge.verdict if badge else "unknown")
            fit.setToolTip(badge.detail if badge else "")
            fit.setForeground(QBrush(_TOO_LARGE) if badge and not badge.ok else QBrush())
        output = self.item(row, OUTPUT)
        output.setText(self._output_name(quant.name))

    # -- ticking -------------------------------------------------------------------------------
    def _toggle_row(self, row: int, column: int) -> None:
        # A click anywhere on the row ticks it; the checkbox column toggles itself.
        if column != TYPE:
            item = self.item(row, TYPE)
            item.setCheckState(Qt.CheckState.Unchecked
                               if item.checkState() == Qt.CheckState.Checked
                               else Qt.CheckState.Checked)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == TYPE:
            self.checkedChanged.emit()
