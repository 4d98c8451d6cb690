"""My Models' questions to the user: confirm a removal, pick which found models to index."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from app.engine.units import human_bytes
from app.models.records import ModelFileRecord
from app.ui.plain_text import escaped_rich


def ask_delete(parent: QWidget, record: ModelFileRecord, can_delete_file: bool) -> bool | None:
    """Confirm removing a model. None: cancelled; otherwise whether to delete the file too."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Remove model")
    box.setText(escaped_rich(f"Remove {record.name} from your library?"))
    checkbox = None
    if can_delete_file:
        checkbox = QCheckBox(f"Also delete the file from disk ({human_bytes(record.file_size)})")
        box.setCheckBox(checkbox)
        box.setInformativeText(escaped_rich(record.path))
    else:
        box.setInformativeText(escaped_rich(
            f"The file stays where it is, because it is not in Hearth's models folder:\n"
            f"{record.path}"
        ))
    remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is not remove:
        return None
    return bool(checkbox and checkbox.isChecked())


def choose_models_to_index(parent: QWidget, paths: list[Path]) -> list[Path]:
    """Let the user tick which found files to index; empty when cancelled."""
    dialog = QDialog(parent)
    dialog.setWindowTitle("Models found on this computer")
    layout = QVBoxLayout(dialog)
    layout.addWidget(QLabel(
        f"{len(paths)} model file(s) from LM Studio or the Hugging Face cache are not in your "
        "library yet. Index them in place (nothing is copied):"
    ))
    listing = QListWidget(dialog)
    for path in paths:
        item = QListWidgetItem(str(path), listing)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked)
    layout.addWidget(listing)
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Index selected")
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    dialog.resize(720, 420)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    chosen = [
        paths[i] for i in range(listing.count())
        if listing.item(i).checkState() == Qt.CheckState.Checked
    ]
    dialog.deleteLater()
    return chosen if accepted else []
