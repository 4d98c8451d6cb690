"""Images waiting in the composer: what a paste or a drop offers, and the row of thumbnails
(each removable) shown above the input until the message is sent."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QIODevice, QMimeData, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from app.engine.types import DecodedImage
from app.services.chat_images import Attachment
from app.ui.plain_text import escaped_rich

THUMB_PX = 64
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.gif);;All files (*)"
# Raw image bytes a paste may carry (kept as they are), best first.
_RAW_FORMATS = (("image/png", "png"), ("image/jpeg", "jpg"), ("image/webp", "webp"),
                ("image/gif", "gif"))


def thumbnail(image: DecodedImage, size: int = THUMB_PX) -> QPixmap:
    """A small copy of already-decoded pixels (no file is read again)."""
    full = QImage(image.rgb, image.width, image.height, 3 * image.width,
                  QImage.Format.Format_RGB888)
    small = full.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(small)


def offered_images(mime: QMimeData) -> list[tuple[Path | bytes, str]]:
    """The images a paste or drop offers, as (file or bytes, name); [] when it offers none
    (plain text goes into the input as before). Dropped files are all taken as images: one
    that is not is refused with its reason rather than pasted as a file address."""
    if mime.hasUrls():
        files = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        if files:
            return [(path, path.name) for path in files]
    for media_type, extension in _RAW_FORMATS:
        if mime.hasFormat(media_type):
            return [(bytes(mime.data(media_type).data()), f"pasted image.{extension}")]
    if mime.hasImage():
        image = QImage(mime.imageData())
        buffer = QBuffer()
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        if not image.isNull() and image.save(buffer, "PNG"):
            return [(bytes(buffer.data().data()), "pasted image.png")]
    return []


class AttachmentStrip(QWidget):
    """The composer's images: a thumbnail and a Remove button each; hidden when empty."""

    removeRequested = Signal(int)  # position

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self.thumbnails: list[QLabel] = []
        self.remove_buttons: list[QToolButton] = []
        self.hide()

    def set_images(self, attachments: Sequence[Attachment]) -> None:
        while self._row.count():
            item = self._row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.thumbnails, self.remove_buttons = [], []
        for position, attached in enumerate(attachments):
            cell = QWidget(self)
            column = QVBoxLayout(cell)
            column.setContentsMargins(0, 0, 0, 0)
            picture = QLabel(cell)
            picture.setPixmap(thumbnail(attached.image))
            picture.setToolTip(escaped_rich(attached.name))  # the name came from outside
            remove = QToolButton(cell)
            remove.setText("Remove")
            remove.setToolTip("Remove this image from the message")
            remove.clicked.connect(lambda _=False, p=position: self.removeRequested.emit(p))
            column.addWidget(picture)
            column.addWidget(remove)
            self._row.addWidget(cell)
            self.thumbnails.append(picture)
            self.remove_buttons.append(remove)
        self._row.addStretch(1)
        self.setVisible(bool(attachments))
