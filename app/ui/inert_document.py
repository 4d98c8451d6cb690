"""Documents and a browser for untrusted rich text that load nothing.

QTextDocument fetches what its HTML names (images, style sheets) through loadResource, which
by default reads local files and Qt resources: an image address of /dev/zero would be read
until memory runs out. These classes answer every such request with nothing, except that an
image is answered with a blank 1×1 one: given nothing, Qt's image handler reads the file itself.
Hearth ships no resources for them, so there is no exception to make.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.ui.link_policy import open_link


class ResourceRefusals:
    """How many resource requests inert documents refused (tests and diagnostics)."""

    count = 0
    last: str = ""

    @classmethod
    def refuse(cls, kind: int, name: QUrl) -> Any:
        """Count the request; the answer to give Qt instead of the resource."""
        cls.count += 1
        cls.last = name.toString()[:200]
        if kind == QTextDocument.ResourceType.ImageResource:
            return _blank_image()
        return None


def _blank_image() -> QImage:
    image = QImage(1, 1, QImage.Format.Format_ARGB32)
    image.fill(0)
    return image


class InertDocument(QTextDocument):
    """A QTextDocument whose images, style sheets and other resources never load."""

    def loadResource(self, kind: int, name: QUrl) -> Any:  # noqa: N802 - Qt's API
        return ResourceRefusals.refuse(kind, name)


class InertBrowser(QTextBrowser):
    """A read-only rich-text view (model cards): loads nothing, follows no link by itself;
    a clicked link goes to `open_link` (web addresses only, after the user confirms)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocument(InertDocument(self))
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor)

    def loadResource(self, kind: int, name: QUrl) -> Any:  # noqa: N802 - Qt's API
        return ResourceRefusals.refuse(kind, name)

    def doSetSource(self, name: QUrl, kind: Any = None) -> None:  # noqa: N802 - Qt's API
        """Navigation is never followed (a source would be read from disk)."""

    def _on_anchor(self, url: QUrl) -> None:
        open_link(url.toString(), self)


def inert_document(html: str, parent: QObject | None = None) -> InertDocument:
    document = InertDocument(parent)
    document.setHtml(html)
    return document
