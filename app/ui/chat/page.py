"""The Chat page: chats | transcript + composer + status | chat settings, model bar on top."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.models.chat_export import export_json, export_markdown
from app.models.records import MessageRecord
from app.models.store import Store
from app.services.chat_images import Attachment, no_vision_message, vision_models, warm
from app.ui.bridge import EngineBridge
from app.ui.chat.approval_panel import ApprovalPanel
from app.ui.chat.chat_list import ChatList
from app.ui.chat.composer import Composer
from app.ui.chat.continue_action import ContinueAction
from app.ui.chat.controller import ChatController
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.message_view import MessageView
from app.ui.chat.model_picker import ModelPicker
from app.ui.chat.settings_panel import SettingsPanel
from app.ui.chat.status_line import StatusLine
from app.ui.chat.tool_sources import ToolSources
from app.ui.documents.asking import DocumentAsker
from app.ui.documents.citation_pane import CitationPane
from app.ui.documents.panel import DocumentsPanel
from app.ui.plain_text import escaped_rich, plain_label
from app.ui.workers import TaskRunner

LAST_CHAT_SETTING = "chat.last_id"  # reopened at the next start
EXPORT_FORMATS = {"markdown": export_markdown, "json": export_json}
EXPORT_FILTERS = {"markdown": (".md", "Markdown (*.md)"), "json": (".json", "JSON (*.json)")}


class ChatPage(QWidget):
    currentChatChanged = Signal(int)

    def __init__(self, store: Store, bridge: EngineBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._bridge = bridge
        self._shown: int | None = None  # the chat whose settings and header are on screen
        self._sending: tuple[str, tuple[Attachment, ...]] | None = None  # until `sendEnded`
        self.messages = MessageListModel(self)
        self.tool_sources = ToolSources(store, self)
        self._warming = TaskRunner(self, max_threads=1)  # `shutdown` waits for its warm-ups
        self.document_asker = DocumentAsker(store, bridge.pool, self)
        self.controller = ChatController(store, bridge, self.messages, self,
                                         tools=self.tool_sources, documents=self.document_asker)
        self.model_picker = ModelPicker(store, bridge, self)
        self.chat_list = ChatList(store, self)
        self.view = MessageView(self.messages, self)
        self.continue_action = ContinueAction(self.controller, self.messages, self)
        self.view.delegate.images_folder = store.images_folder  # where thumbnails come from
        self.citation_pane = CitationPane(store, self)  # beside the transcript when opened
        self.composer = Composer(self)
        self.status_line = StatusLine(self)
        self.settings_panel = SettingsPanel(store, self)
        self.documents_panel = DocumentsPanel(store, bridge.pool, self)
        self.documents_panel.ensure_chat = self._ensure_chat
        attach = self.composer.attach_button.menu()
        attach.addAction("Documents…", self.documents_panel.add_files_dialog)
        attach.addAction("Folder of documents…", self.documents_panel.add_folder_dialog)
        self.settings_panel.tools_panel.set_sources(self.tool_sources)
        self.approval_panel = ApprovalPanel(self)
        self.tool_step = plain_label(parent=self)  # "Tool step 3 of 10" while a loop runs
        self.tool_step.hide()
        self.title_label = plain_label(parent=self)  # chat titles come from what was typed
        self.export_markdown_button = QPushButton("Export Markdown…", self)
        self.export_json_button = QPushButton("Export JSON…", self)
        self._build_layout()
        self._connect()
        self.chat_list.refresh()
        last = store.get_setting(LAST_CHAT_SETTING)
        ids = self.chat_list.chat_ids()
        if ids:
            self.open_chat(last if last in ids else ids[0])
        else:
            self._show_chat_header(None)

    # -- public API ----------------------------------------------------------------------------
    def open_chat(self, chat_id: int) -> None:
        chat = self._store.get_chat(chat_id)
        if chat is None:
            return
        if chat_id != self._shown:
            self.composer.cancel_edit()
            self.status_line.clear()
            self.messages.set_pretty_json(chat.structured_output)  # before the rows arrive
            self.controller.set_chat(chat_id)
            self._warm_images()
            self._show_last_stats()
            self._store.set_setting(LAST_CHAT_SETTING, chat_id)
            self._shown = chat_id
            self.settings_panel.set_chat(chat)
            self.documents_panel.set_chat(chat_id)
            self.citation_pane.hide()  # it showed a citation of the chat left
            self.currentChatChanged.emit(chat_id)
        self._show_chat_header(chat_id)
        if self.chat_list.current_chat_id() != chat_id:
            self.chat_list.refresh(select_id=chat_id)

    def _warm_images(self) -> None:
        # The chat's images are decoded off this thread now, not when the next reply is sent.
        records = [r for r in self.messages.records() if r.images_json]
        if records:
            folder = self._store.images_folder
            self._warming.start(_warm_turns, records, folder)

    def _show_last_stats(self) -> None:
        # An opened chat shows its last reply's numbers, so the context meter is right at once.
        for position in range(self.messages.total_count - 1, -1, -1):
            record = self.messages.record_at(position)
            if record.role == "assistant" and record.stats is not None:
                self.status_line.set_stats(record.stats)
                return
        self.status_line.set_context(0, self._bridge.n_ctx)

    def current_chat_id(self) -> int | None:
        return self.controller.chat_id

    def new_chat(self) -> int:
        chat = self._store.create_chat("New chat")
        self.chat_list.refresh(select_id=chat.id)
        self.open_chat(chat.id)
        self.composer.input.setFocus()
        return chat.id

    def _ensure_chat(self) -> int:
        chat_id = self.current_chat_id()
        return chat_id if chat_id is not None else self.new_chat()

    def export_to(self, path: str | Path, fmt: str) -> Path:
        """Write the current chat to `path` as "markdown" or "json": the branch on screen."""
        chat_id = self.controller.chat_id
        chat = self._store.get_chat(chat_id) if chat_id is not None else None
        if chat is None:
            raise ValueError("there is no chat to export")
        render = EXPORT_FORMATS[fmt]
        target = Path(path)
        target.write_text(render(chat, self.messages.records(),
                                 images_folder=self._store.images_folder), encoding="utf-8")
        return target

    # -- building ------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        header = QHBoxLayout()
        header.addWidget(self.title_label, 1)
        header.addWidget(self.export_markdown_button)
        header.addWidget(self.export_json_button)
        actions = QHBoxLayout()
        for action in (self.view.copy_action, self.view.edit_action, self.view.regenerate_action,
                       self.continue_action):
            button = QToolButton(self)
            button.setDefaultAction(action)
            actions.addWidget(button)
        actions.addStretch(1)

        center = QWidget(self)
        column = QVBoxLayout(center)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(header)
        column.addWidget(self.view, 1)
        column.addLayout(actions)
        column.addWidget(self.tool_step)
        column.addWidget(self.approval_panel)
        column.addWidget(self.composer)
        column.addWidget(self.status_line)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.chat_list)
        splitter.addWidget(center)
        # Scrolls rather than squeezing its sections over each other in a short window.
        sections = QWidget(self)
        right = QVBoxLayout(sections)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.documents_panel)
        right.addWidget(self.settings_panel, 1)
        settings = QScrollArea(self)
        settings.setWidget(sections)
        settings.setWidgetResizable(True)
        settings.setFrameShape(QFrame.Shape.NoFrame)
        settings.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        settings.setMinimumWidth(self.settings_panel.minimumSizeHint().width()
                                 + settings.verticalScrollBar().sizeHint().width())
        splitter.addWidget(settings)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 640, 260])
        splitter.insertWidget(2, self.citation_pane)  # right of the transcript, hidden
        self._splitter = splitter
        layout = QVBoxLayout(self)
        layout.addWidget(self.model_picker)
        layout.addWidget(splitter, 1)

    def _connect(self) -> None:
        c = self.controller
        self.composer.sendRequested.connect(self._send)
        self.composer.editRequested.connect(self._resend_edit)
        self.composer.stopRequested.connect(c.stop)
        self.composer.imageRefused.connect(self.status_line.show_notice)
        self.composer.imagesAdded.connect(self._check_vision)
        self.settings_panel.structuredChanged.connect(self.messages.set_pretty_json)
        self.view.editRequested.connect(self.composer.begin_edit)
        self.view.regenerateRequested.connect(c.regenerate)
        self.view.versionRequested.connect(c.show_version)
        self.view.deleteVersionRequested.connect(c.delete_version)
        self.view.citationRequested.connect(self.open_citation)
        c.busyChanged.connect(self.composer.set_busy)
        c.busyChanged.connect(self.view.set_busy)
        c.statsChanged.connect(self.status_line.set_stats)
        c.contextChanged.connect(self.status_line.set_context)
        c.notice.connect(self.status_line.show_notice)
        c.chatUpdated.connect(self._on_chat_updated)
        c.sendEnded.connect(self._on_send_ended)
        tools = c.tool_driver
        tools.approvalNeeded.connect(self.approval_panel.ask)
        tools.approvalClosed.connect(self.approval_panel.hide)
        tools.stepChanged.connect(self._show_tool_step)
        self.approval_panel.decided.connect(tools.decide)
        self.chat_list.chatActivated.connect(self.open_chat)
        self.chat_list.hitActivated.connect(self._open_hit)
        self.chat_list.newChatRequested.connect(self.new_chat)
        self.chat_list.chatDeleted.connect(self._on_chat_deleted)
        self.chat_list.chatRenamed.connect(lambda chat_id, _t: self._show_chat_header(chat_id))
        self._bridge.loaded.connect(self._on_model_loaded)
        self.model_picker.loadFailed.connect(self.status_line.show_notice)
        self.export_markdown_button.clicked.connect(lambda: self._export_dialog("markdown"))
        self.export_json_button.clicked.connect(lambda: self._export_dialog("json"))

    def shutdown(self) -> None:
        """The window is closing: end a tool loop, stop the MCP servers and indexing."""
        self.controller.stop()
        self.controller.image_steps.shutdown()
        self.tool_sources.close()
        self.documents_panel.shutdown()
        self.document_asker.shutdown()
        self._warming.shutdown()  # stops between turns: the Store closes next

    # -- reactions -----------------------------------------------------------------------------
    def open_citation(self, message_id: int, number: int) -> bool:
        """Show citation ``number`` of that reply in the side pane; False if it has none."""
        record = self._store.get_message(message_id)
        sources = record.sources if record is not None else None
        citation = sources.citation(number) if sources is not None else None
        if citation is None:
            return False
        self.citation_pane.show_citation(citation)
        sizes = self._splitter.sizes()
        pane = self._splitter.indexOf(self.citation_pane)
        if sizes[pane] == 0:  # first shown: it takes room from the transcript
            give = min(360, sizes[pane - 1] // 2)
            sizes[pane - 1] -= give
            sizes[pane] = give
            self._splitter.setSizes(sizes)
        return True

    def _show_tool_step(self, step: int, cap: int) -> None:
        self.tool_step.setVisible(step > 0)
        self.tool_step.setText(f"Tool step {step} of {cap}" if step > 0 else "")

    def _send(self, text: str) -> None:
        if self.controller.chat_id is None and (text.strip() or self.composer.images):
            self.new_chat()  # so the settings panel edits the chat this message starts
        self.settings_panel.flush()
        images = tuple(self.composer.images)
        self._sending = (text, images)
        if not self.controller.send(text, images):
            self._sending = None

    def _on_send_ended(self, stored: bool) -> None:
        # Images are saved off this thread first: the composer lets go of what was sent only
        # once the message is stored, and keeps all of it when it was not.
        sending, self._sending = self._sending, None
        if stored and sending is not None:
            self.composer.accept_sent(*sending)
            self.view.follow_latest()

    def _check_vision(self) -> None:
        """Attaching an image to a model without vision says so at once."""
        if not self._bridge.loaded_projector:
            self.status_line.show_notice(
                no_vision_message(self._bridge.loaded_path, vision_models(self._store)))

    def _resend_edit(self, message_id: int, text: str) -> None:
        self.settings_panel.flush()
        if self.controller.edit_and_resend(message_id, text):
            self.composer.accept_sent()
            self.view.follow_latest()

    def _on_chat_updated(self, chat_id: int) -> None:
        if chat_id != self.controller.chat_id:
            self.chat_list.refresh()
            return
        if chat_id != self._shown:
            # Sending with no chat open made a new one.
            self.open_chat(chat_id)
        # Its title may have just been set from the first message, and it moved to the top.
        self.chat_list.move_to_top(chat_id)
        self._show_chat_header(chat_id)

    def _on_model_loaded(self, _job: int, _path: str, _info: object, n_ctx: int) -> None:
        self.status_line.set_context(0, n_ctx)

    def _open_hit(self, chat_id: int, message_id: int) -> None:
        self.open_chat(chat_id)
        self.controller.reveal(message_id)  # a hit on another branch switches to it
        self.view.select_message(message_id)

    def _on_chat_deleted(self, chat_id: int) -> None:
        if chat_id != self._shown:
            return
        self.controller.set_chat(None)
        self._shown = None
        ids = self.chat_list.chat_ids()
        if ids:
            self.open_chat(ids[0])
        else:
            self.settings_panel.set_chat(None)
            self.documents_panel.set_chat(None)
            self._show_chat_header(None)

    def _show_chat_header(self, chat_id: int | None) -> None:
        chat = self._store.get_chat(chat_id) if chat_id is not None else None
        self.title_label.setText(chat.title if chat else "No chat open: write a message to start")
        for button in (self.export_markdown_button, self.export_json_button):
            button.setEnabled(chat is not None)

    def _export_dialog(self, fmt: str) -> None:
        chat_id = self.controller.chat_id
        chat = self._store.get_chat(chat_id) if chat_id is not None else None
        if chat is None:
            return
        suffix, pattern = EXPORT_FILTERS[fmt]
        safe = "".join(ch if ch.isalnum() or ch in " -_" else "_" for ch in chat.title).strip()
        name = (safe or "chat") + suffix
        path, _ = QFileDialog.getSaveFileName(self, "Export chat", name, pattern)
        if not path:
            return
        try:
            self.export_to(path, fmt)
        except OSError as exc:
            QMessageBox.warning(self, "Export failed",
                                escaped_rich(f"Could not write {path}: {exc.strerror}"))


def _warm_turns(records: Sequence[MessageRecord], folder: Path) -> Iterator[int]:
    # One turn at a time, so a closing page stops the warm-up at the next turn.
    for record in records:
        yield warm([record], folder)
