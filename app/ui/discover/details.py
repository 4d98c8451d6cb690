"""One repository opened: its GGUF files by quantization with fit badges, and its model card."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.engine.hub.api import HubFile, HubModel
from app.engine.hub.downloads import DownloadError, target_path
from app.engine.sizing.fit_verdict import FitBadge
from app.engine.units import human_bytes, human_count
from app.ui.inert_document import InertBrowser
from app.ui.markdown_html import MarkdownRenderer
from app.ui.plain_text import make_plain

_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.DOTALL)
_BADGE_COLOURS = {"full offload": "#2e7d32",
                  "partial offload": "#b26a00", "CPU only": "#2e7d32",
                  "does not fit": "#c62828"}
FILE_COLUMNS = ["File", "Size", "Fit on this machine", ""]
CHECKING = "checking…"  # a file's fit while its header probe runs
EMBEDDING_NOTE = ("An embedding model: it turns documents into vectors so a chat can search them "
                  "(collections use one). It is for documents, not for chatting.")


@dataclass
class RepoDetails:
    """What a background job fetched for one repository."""

    repo_id: str
    files: list[HubFile]
    badges: dict[str, FitBadge] = field(default_factory=dict)  # by HubFile.name
    # Each model file's fit loaded with the repository's vision projector (`repo_projector`),
    # shown while "Also download the vision projector" is ticked.
    projector_badges: dict[str, FitBadge] = field(default_factory=dict)
    card: str = ""
    card_error: str = ""
    loading: bool = False  # the file list only: badges and the card are still on their way


@dataclass(frozen=True)
class BadgeReady:
    """One file's fit, as soon as its own header probe finished."""

    name: str  # HubFile.name
    badge: FitBadge
    with_projector: FitBadge | None = None  # a model file's fit beside the repo's projector


@dataclass(frozen=True)
class CardReady:
    card: str
    error: str = ""


def repo_projector(files: list[HubFile]) -> HubFile | None:
    """The vision projector offered with the repository's models: its first mmproj file."""
    return next((f for f in files if f.kind == "mmproj"), None)


def on_disk(models_dir: Path, repo_id: str, hub_file: HubFile) -> bool:
    """Whether every part of ``hub_file`` is already complete in ``models_dir`` (a final name
    exists only after the download verified it; the size check catches a file put there by hand
    that is cut short)."""
    sizes = hub_file.part_sizes
    if len(sizes) != len(hub_file.parts):
        sizes = (0,) * len(hub_file.parts)  # unknown: being there is enough
    try:
        for name, size in zip(hub_file.parts, sizes, strict=True):
            actual = target_path(models_dir, repo_id, name).stat().st_size
            if size and actual != size:
                return False
    except (OSError, ValueError, DownloadError):
        return False
    return bool(hub_file.parts)


def card_markdown(readme: str) -> str:
    """The README without its YAML metadata block, which Markdown would show as a rule and text."""
    return _FRONT_MATTER.sub("", readme, count=1)


class ModelDetails(QWidget):
    """Shows a `RepoDetails`; asks for downloads through `downloadRequested(repo, names)`."""

    downloadRequested = Signal(str, list)
    visionFound = Signal(str)  # a repository's file list holds a vision projector

    def __init__(self, models_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.title = QLabel("Select a model to see its files")
        self.title.setObjectName("detailsTitle")
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel("")
        self.subtitle.setStyleSheet("color: #666;")
        self.subtitle.setWordWrap(True)
        self.purpose = QLabel(EMBEDDING_NOTE)
        self.purpose.setObjectName("detailsPurpose")
        self.purpose.setWordWrap(True)
        self.purpose.setStyleSheet("font-style: italic;")  # the theme's colour, light or dark
        self.purpose.hide()
        make_plain(self.title, self.subtitle)  # repository names and tags come from the Hub
        self.with_projector = QCheckBox()
        self.with_projector.setChecked(True)
        self.with_projector.hide()
        # The badges with and without the projector are both fetched: toggling only repaints.
        self.with_projector.toggled.connect(self._repaint_badges)

        self.files = QTreeWidget()
        self.files.setObjectName("filesTree")
        self.files.setColumnCount(len(FILE_COLUMNS))
        self.files.setHeaderLabels(FILE_COLUMNS)
        self.files.setRootIsDecorated(False)
        header = self.files.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)

        # Written by any repository owner: rendered by Hearth's renderer into a browser that
        # loads nothing and opens links only through the link policy.
        self.card = InertBrowser()
        self.card.setObjectName("modelCard")
        self._render_card = MarkdownRenderer(
            self.card.palette().color(QPalette.ColorRole.Base).lightness() < 128)
        self.card.setPlaceholderText("The model card appears here.")

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.title)
        top_layout.addWidget(self.subtitle)
        top_layout.addWidget(self.purpose)
        top_layout.addWidget(self.with_projector)
        top_layout.addWidget(self.files, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.card)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self._details: RepoDetails | None = None
        self._projector: HubFile | None = None
        self._model: HubModel | None = None

    # -- states --------------------------------------------------------------------------------
    def show_loading(self, model: HubModel) -> None:
        self._details = None
        self._model = model
        self.title.setText(model.repo_id)
        self._write_subtitle(vision=False)
        self.purpose.setVisible("embedding" in model.notable_tags)
        self.files.clear()
        self.with_projector.hide()
        QTreeWidgetItem(self.files, ["Loading files…"])
        self.card.setPlainText("Loading the model card…")

    def _write_subtitle(self, vision: bool) -> None:
        """The repository's figures and tags; ``vision`` adds the tag its Hub tags may lack
        when its file list holds a projector."""
        model = self._model
        if model is None:
            return
        bits = [f"by {model.author}", f"{human_count(model.downloads)} downloads",
                f"{human_count(model.likes)} likes"]
        if model.parameters:
            bits.insert(1, f"{human_count(model.parameters)} parameters")
        if model.licence:
            bits.append(f"licence: {model.licence}")
        tags = model.notable_tags + (("vision",) if vision and "vision" not in
                                     model.notable_tags else ())
        if tags:
            bits.append("tags: " + ", ".join(tags))
        self.subtitle.setText(" · ".join(bits))

    def show_error(self, message: str) -> None:
        self.files.clear()
        QTreeWidgetItem(self.files, [message]).setToolTip(0, message)
        self.card.clear()

    def show_details(self, details: RepoDetails) -> None:
        self._details = details
        self.files.clear()
        models = [f for f in details.files if f.kind == "model"]
        projectors = [f for f in details.files if f.kind == "mmproj"]
        self._projector = repo_projector(details.files)
        if self._projector is not None:
            self.with_projector.setText(
                f"Also download the vision projector ({self._projector.name}, "
                f"{human_bytes(self._projector.size)}) with a model (counted in its fit)")
            self.with_projector.show()
            self._write_subtitle(vision=True)
            self.visionFound.emit(details.repo_id)
        else:
            self.with_projector.hide()
        if not details.files:
            QTreeWidgetItem(self.files, ["This repository has no GGUF files."])
        groups: dict[str, QTreeWidgetItem] = {}
        for hub_file in models + projectors:
            group = hub_file.label if hub_file.kind == "model" else "Vision projector (mmproj)"
            parent = groups.get(group)
            if parent is None:
                parent = groups[group] = QTreeWidgetItem(self.files, [group])
                parent.setFirstColumnSpanned(True)
                # As tall as a row with a button, so group titles do not crowd their files.
                parent.setSizeHint(0, QSize(-1, 26))
                font = parent.font(0)
                font.setBold(True)
                parent.setFont(0, font)
            self._add_file(parent, hub_file, self._badge_for(hub_file.name))
        self.files.expandAll()
        if not details.loading:
            self.show_card(details.card, details.card_error)

    def show_card(self, card: str, error: str = "") -> None:
        if self._details is not None:
            self._details.card, self._details.card_error = card, error
        if card:
            self.card.setHtml(self._render_card(card_markdown(card)))
        else:
            self.card.setPlainText(error or "This repository has no model card.")

    def apply(self, update: RepoDetails | BadgeReady | CardReady) -> None:
        """One step of a repository's fetch: the file list, then each badge and the card as
        they arrive, so the rows never wait for the slowest header."""
        if isinstance(update, RepoDetails):
            self.show_details(update)
        elif isinstance(update, BadgeReady):
            self.set_badge(update.name, update.badge, update.with_projector)
        elif isinstance(update, CardReady):
            self.show_card(update.card, update.error)

    def finish(self, details: RepoDetails) -> None:
        """The fetch of the repository shown ended: keep its complete details (the rows and the
        card already show them, so nothing is rebuilt under the user's cursor)."""
        if self._details is not None and self._details.repo_id == details.repo_id:
            self._details = details
            self._repaint_badges()
        else:
            self.show_details(details)

    def set_badge(self, name: str, badge: FitBadge | None,
                  with_projector: FitBadge | None = None) -> None:
        if self._details is not None and badge is not None:
            self._details.badges[name] = badge
            if with_projector is not None:
                self._details.projector_badges[name] = with_projector
        for item in self.file_items():
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self._paint_badge(item, self._badge_for(name))

    def _badge_for(self, name: str) -> FitBadge | None:
        """A file's fit as the download would be: with the projector while the box is ticked."""
        if self._details is None:
            return None
        if self._projector is not None and self.with_projector.isChecked():
            badge = self._details.projector_badges.get(name)
            if badge is not None:
                return badge
        return self._details.badges.get(name)

    def _repaint_badges(self) -> None:
        for item in self.file_items():
            self._paint_badge(item, self._badge_for(item.data(0, Qt.ItemDataRole.UserRole)))

    def _add_file(self, parent: QTreeWidgetItem, hub_file: HubFile, badge: FitBadge | None) -> None:
        name = hub_file.name.rsplit("/", 1)[-1]
        if len(hub_file.parts) > 1:
            name += f"  (+{len(hub_file.parts) - 1} more parts)"
        item = QTreeWidgetItem(parent, [name, human_bytes(hub_file.size)])
        item.setData(0, Qt.ItemDataRole.UserRole, hub_file.name)
        item.setToolTip(0, "\n".join(hub_file.parts))
        item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._paint_badge(item, badge)
        button = QPushButton("Download")
        button.clicked.connect(lambda: self._download(hub_file))
        self.files.setItemWidget(item, 3, button)
        self._set_button(button, hub_file)

    def _paint_badge(self, item: QTreeWidgetItem, badge: FitBadge | None) -> None:
        if badge is None:
            loading = self._details is not None and self._details.loading
            item.setText(2, CHECKING if loading else "")
            item.setForeground(2, QBrush(QColor("#888")))
            item.setToolTip(2, "Reading this file's header from the Hub…" if loading else "")
            return
        item.setText(2, badge.verdict)
        item.setForeground(2, QBrush(QColor(_BADGE_COLOURS.get(badge.verdict, "#666"))))
        item.setToolTip(2, badge.detail)

    def _set_button(self, button: QPushButton, hub_file: HubFile) -> None:
        done = (self.models_dir is not None and self._details is not None
                and on_disk(self.models_dir, self._details.repo_id, hub_file))
        button.setText("Downloaded" if done else "Download")
        button.setEnabled(not done)
        button.setToolTip("Already in the models folder" if done
                          else f"Download {', '.join(hub_file.parts)}")

    def refresh_downloaded(self) -> None:
        """Re-check which files are on disk (after a download finished)."""
        if self._details is None:
            return
        by_name = {f.name: f for f in self._details.files}
        for item in self.file_items():
            hub_file = by_name.get(item.data(0, Qt.ItemDataRole.UserRole))
            button = self.download_button(item)
            if hub_file is not None and button is not None:
                self._set_button(button, hub_file)

    def _download(self, hub_file: HubFile) -> None:
        if self._details is None:
            return
        names = list(hub_file.parts)
        projector = self._projector
        if (hub_file.kind == "model" and projector is not None
                and self.with_projector.isChecked()):
            names += list(projector.parts)
        self.downloadRequested.emit(self._details.repo_id, names)

    def file_items(self) -> list[QTreeWidgetItem]:
        """Every file row (not the group rows), for tests and keyboard use."""
        items = []
        for i in range(self.files.topLevelItemCount()):
            group = self.files.topLevelItem(i)
            items += [group.child(j) for j in range(group.childCount())]
        return items

    def download_button(self, item: QTreeWidgetItem) -> QPushButton:
        return self.files.itemWidget(item, 3)  # type: ignore[return-value]
