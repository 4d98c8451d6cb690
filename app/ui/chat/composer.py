"""Where the user writes: Enter sends, Shift+Enter breaks the line, Send turns into Stop.
Images come in by the Attach menu, a paste or a drop; each is checked at once (a bad one is
refused with its reason, the text and the other images stay) and waits as a thumbnail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.engine.vision.images import ImageError
from app.services.chat_images import Attachment, read_attachment
from app.ui.chat.image_attachments import IMAGE_FILTER, AttachmentStrip, offered_images
from app.ui.workers import TaskRunner


class _Input(QPlainTextEdit):
    submitted = Signal()
    imagesOffered = Signal(list)  # [(Path | bytes, name)] from a paste or a drop
    recallRequested = Signal()  # Up in an empty box: edit the last message sent

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return bool(offered_images(source)) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        # Ctrl+V and drops both arrive here: images go to the composer, text into the box.
        offered = offered_images(source)
        if offered:
            self.imagesOffered.emit(offered)
        else:
            super().insertFromMimeData(source)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() == Qt.Key.Key_Up and not self.toPlainText()
                and event.modifiers() == Qt.KeyboardModifier.NoModifier):
            self.recallRequested.emit()
            return
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class Composer(QWidget):
    sendRequested = Signal(str)
    editRequested = Signal(int, str)  # message id being replaced, new text
    stopRequested = Signal()
    imagesAdded = Signal()  # new images wait to be sent (the page checks the model reads them)
    imageRefused = Signal(str)  # why an image was not taken

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._busy = False
        self._editing: int | None = None
        self.images: list[Attachment] = []
        self._reading = 0  # batches of offered images being read
        self._tasks = TaskRunner(self, max_threads=1)
        self.image_strip = AttachmentStrip(self)
        self.image_strip.removeRequested.connect(self.remove_image)
        self.setAcceptDrops(True)
        self.input = _Input(self)
        self.input.imagesOffered.connect(self.add_images)
        self.input.setPlaceholderText("Send a message (Enter to send, Shift+Enter for a new line)")
        self.input.setMaximumHeight(90)
        self.input.submitted.connect(self.submit)
        self.button = QPushButton("Send", self)
        self.button.clicked.connect(self._on_button)
        # Its menu's actions are the page's (documents now): the composer only offers them.
        self.attach_button = QToolButton(self)
        self.attach_button.setText("Attach")
        self.attach_button.setToolTip("Add documents for this chat to answer from")
        self.attach_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.attach_button.setMenu(QMenu(self.attach_button))
        self.attach_button.menu().addAction("Images…", self.attach_images_dialog)

        self.edit_banner = QLabel("Editing a message: sending replaces it and every later one.")
        self.cancel_edit_button = QPushButton("Cancel edit", self)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        banner = QHBoxLayout()
        banner.addWidget(self.edit_banner, 1)
        banner.addWidget(self.cancel_edit_button)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.attach_button)
        buttons.addWidget(self.button)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(banner)
        layout.addWidget(self.image_strip)
        layout.addLayout(row)
        self._show_banner(False)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def editing_id(self) -> int | None:
        return self._editing

    def text(self) -> str:
        return self.input.toPlainText()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.button.setText("Stop" if busy else "Send")
        self.button.setToolTip("Stop the reply, keeping what was written" if busy else "")

    def begin_edit(self, message_id: int, text: str) -> None:
        self._editing = message_id
        self.input.setPlainText(text)
        self.input.setFocus()
        self._show_banner(True)

    def cancel_edit(self) -> None:
        """Leave edit mode, dropping the edited text (a plain draft is left alone)."""
        if self._editing is None:
            return
        self._editing = None
        self.input.clear()
        self._show_banner(False)

    # -- images --------------------------------------------------------------------------------
    def attach_images_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Attach images", "", IMAGE_FILTER)
        self.add_images([(Path(path), Path(path).name) for path in paths])

    @property
    def reading(self) -> bool:
        """Offered images are still being read and checked (sending waits for them)."""
        return self._reading > 0

    def add_images(self, offered: Iterable[tuple[Path | bytes, str]]) -> None:
        """Read and check images off the GUI thread (a large photo takes a while to decode);
        they join the message as they are found good, each bad one refused with its reason."""
        offered = list(offered)
        if not offered:
            return
        self._reading += 1
        # One worker thread: images join in the order they were offered.
        self._tasks.start(_read_images, offered, on_returned=self._images_read)

    def _images_read(self, result: tuple[list[Attachment], list[str]]) -> None:
        self._reading -= 1
        added, refused = result
        if added:
            self.images.extend(added)
            self.image_strip.set_images(self.images)
            self.imagesAdded.emit()
        if refused:
            self.imageRefused.emit("Image refused: " + "; ".join(refused))

    def remove_image(self, position: int) -> None:
        if 0 <= position < len(self.images):
            del self.images[position]
            self.image_strip.set_images(self.images)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if offered_images(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        # Dropped anywhere on the composer (the input handles drops on itself).
        offered = offered_images(event.mimeData())
        if offered:
            event.acceptProposedAction()
            self.add_images(offered)

    def submit(self) -> None:
        """Send (or resend an edit); ignored while a reply streams or when there is neither
        text nor an image."""
        text = self.text()
        if self._busy or self.reading or not (text.strip() or self.images):
            return
        if self._editing is not None:
            self.editRequested.emit(self._editing, text)
        else:
            self.sendRequested.emit(text)

    def accept_sent(self, text: str | None = None, sent: Sequence[Attachment] | None = None
                    ) -> None:
        """The page took the text and images: clear them and leave edit mode. With ``text``
        and ``sent`` (a Send whose images were saved meanwhile) only those go: an image added
        or text typed since stays."""
        self._editing = None
        if text is None or self.text() == text:
            self.input.clear()
        if sent is None:
            self.images.clear()
        else:
            self.images[:] = [a for a in self.images if not any(a is s for s in sent)]
        self.image_strip.set_images(self.images)
        self._show_banner(False)

    def _on_button(self) -> None:
        if self._busy:
            self.stopRequested.emit()
        else:
            self.submit()

    def _show_banner(self, visible: bool) -> None:
        self.edit_banner.setVisible(visible)
        self.cancel_edit_button.setVisible(visible)


def _read_images(offered: list[tuple[Path | bytes, str]]) -> tuple[list[Attachment], list[str]]:
    added, refused = [], []
    for source, name in offered:
        try:
            added.append(read_attachment(source, name))
        except ImageError as exc:
            refused.append(f"{exc.name or name or 'image'}: {exc.reason}")
    return added, refused
