"""A message's images in its bubble: thumbnails painted by the delegate (an `InertDocument`
loads nothing, so they are not part of the HTML), each file decoded once and kept in a bounded
cache, "image missing" for a file that is gone, and the full-size viewer a click opens."""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QImageReader, QPainter, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

from app.engine.types import DecodedImage
from app.engine.vision.images import MAX_IMAGE_PIXELS, ImageError, load_image
from app.models.image_records import StoredImage, images_from_json
from app.ui.plain_text import plain_label
from app.ui.workers import TaskRunner

THUMB_HEIGHT = 96
THUMB_MAX_WIDTH = 3 * THUMB_HEIGHT  # a panorama is cut down to this
GAP = 6
CACHE_ITEMS = 300  # thumbnails kept (about 100 KB each)
MISSING_TEXT = "image missing"


@lru_cache(maxsize=512)
def images_of(images_json: str | None) -> tuple[StoredImage, ...]:
    """A row's images, parsed once per distinct JSON text (rows are laid out often)."""
    return images_from_json(images_json)


def read_qimage(path: Path, fit: QSize | None = None) -> QImage | None:
    """The image at ``path`` (scaled within ``fit`` while decoding where the format allows),
    or None when the file is missing or unreadable. The declared size is checked first."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid():
        if size.width() * size.height() > MAX_IMAGE_PIXELS:
            return None
        if fit is not None:
            reader.setScaledSize(size.scaled(fit, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if not image.isNull():
            return image
    if not path.is_file():
        return None
    try:  # a format this Qt build has no plugin for (WebP): Hearth's own decoder
        decoded = load_image(path)
    except ImageError:
        return None
    image = _qimage(decoded)
    if fit is not None:
        image = image.scaled(fit, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image


def _thumb_width(image: StoredImage) -> int:
    """A thumbnail's width from the stored size: THUMB_HEIGHT tall, at most THUMB_MAX_WIDTH."""
    if image.width <= 0 or image.height <= 0:
        return THUMB_HEIGHT
    return max(1, min(THUMB_MAX_WIDTH, round(image.width * THUMB_HEIGHT / image.height)))


def _read_thumbnail(key: str) -> tuple[str, QImage | None]:
    return key, read_qimage(Path(key), QSize(THUMB_MAX_WIDTH, THUMB_HEIGHT))


def _qimage(decoded: DecodedImage) -> QImage:
    return QImage(decoded.rgb, decoded.width, decoded.height, 3 * decoded.width,
                  QImage.Format.Format_RGB888).copy()  # owns its pixels


class _Loading:
    """A thumbnail being decoded on the worker (painted as an empty frame meanwhile)."""


LOADING = _Loading()


class Thumbnails(QObject):
    """Thumbnails by file path (None: the file is missing or unreadable), least recent first
    out. A file is decoded on a worker thread the first time it is asked for (a large photo
    takes longer than a frame); `ready` then asks for a repaint. Layout needs no pixels: the
    sizes are the ones stored with the image."""

    ready = Signal()

    def __init__(self, limit: int = CACHE_ITEMS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._limit = limit
        self._items: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._pending: set[str] = set()
        self._tasks = TaskRunner(self, max_threads=1)

    def get(self, path: Path) -> QPixmap | None | _Loading:
        key = str(path)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        if key not in self._pending:
            self._pending.add(key)
            self._tasks.start(_read_thumbnail, key, on_returned=self._decoded)
        return LOADING

    def _decoded(self, result: tuple[str, QImage | None]) -> None:
        key, image = result
        self._pending.discard(key)
        self._items[key] = QPixmap.fromImage(image) if image is not None else None
        while len(self._items) > self._limit:
            self._items.popitem(last=False)
        self.ready.emit()

    def layout(self, images_json: str | None, folder: Path | None, left: int, top: int,
               width: int) -> tuple[tuple[QRect, ...], int]:
        """Where each thumbnail goes (flowing into lines of ``width``) and the height used."""
        images = images_of(images_json)
        if not images or folder is None:
            return (), 0
        rects: list[QRect] = []
        x, y = left, top
        for image in images:
            w = _thumb_width(image)
            if x > left and x + w > left + width:
                x, y = left, y + THUMB_HEIGHT + GAP
            rects.append(QRect(x, y, w, THUMB_HEIGHT))
            x += w + GAP
        return tuple(rects), y + THUMB_HEIGHT - top

    def hit(self, images_json: str | None, folder: Path | None, rects: tuple[QRect, ...],
            point: QPoint) -> tuple[Path, str] | None:
        """(file, name) of the thumbnail under ``point``, if any."""
        for image, rect in zip(images_of(images_json), rects, strict=False):
            if folder is not None and rect.contains(point):
                return image.path_in(folder), image.name
        return None

    def paint(self, painter: QPainter, images_json: str | None, folder: Path | None,
              rects: tuple[QRect, ...], text_colour: QColor) -> None:
        if folder is None:
            return
        for image, rect in zip(images_of(images_json), rects, strict=False):
            pixmap = self.get(image.path_in(folder))
            if isinstance(pixmap, QPixmap):
                painter.drawPixmap(rect.topLeft(), pixmap)
                continue
            painter.setPen(text_colour)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
            if pixmap is None:
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                                 MISSING_TEXT)


class ImageViewer(QDialog):
    """One image at full size, scaled down to fit the screen."""

    def __init__(self, path: Path, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(name or path.name)  # a window title is plain text
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        screen = (parent.screen() if parent is not None else QGuiApplication.primaryScreen())
        area = screen.availableGeometry().size() * 0.9
        image = read_qimage(path)
        self.picture = QLabel(self)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if image is None:
            self.picture = plain_label(f"{name}: {MISSING_TEXT} ({path})", self)
        else:
            if image.width() > area.width() or image.height() > area.height():
                image = image.scaled(area, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
            self.picture.setPixmap(QPixmap.fromImage(image))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture)
