"""Wires the chat page to the engine (through the bridge) and to the chat's rules
(app.services.chat_session: history, title, the saved reply, versions).

One reply runs at a time. Its text goes to the view (the model's last row) and to a ReplyWriter
that saves it in batches off the GUI thread, so a crash loses at most half a second of a reply
and a Stop or an engine failure keeps what was written. Events of any job but the current one
are ignored.

Before a reply, file work runs off the GUI thread: images attached at Send are saved first
(app.ui.chat.image_steps; the message is stored only once they are, and `sendEnded` tells the
composer whether to let them go), a history holding images is built (decoded) there, and a chat
with document collections builds the question's document context (app.ui.documents.asking);
the reply's sources are saved on it, then it is sent.

Nothing a click does destroys text: regenerate and edit-and-resend add a new version beside the
old one (the Store keeps messages as a tree), and the user moves between versions or deletes one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from app.engine.inference.reasoning import template_keeps_reasoning
from app.engine.types import GenerationStats, ToolCall
from app.models.image_records import StoredImage
from app.models.records import MessageRecord, calls_data
from app.models.reply_writer import ReplyWriter
from app.models.store import Store
from app.models.store_values import UNSET, _Unset
from app.services.chat_images import Attachment, no_vision_message, vision_models
from app.services.chat_session import ChatSession, can_continue, dropped_notice
from app.ui.bridge import EngineBridge
from app.ui.chat.image_steps import ImageSteps
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.reply_state import NO_JOB, Reply
from app.ui.chat.reply_steps import ReplySteps
from app.ui.chat.tool_driver import ToolDriver
from app.ui.chat.tool_sources import ToolSources
from app.ui.documents.asking import DocumentAsker


class ChatController(QObject, ReplySteps):
    busyChanged = Signal(bool)
    statsChanged = Signal(object)  # GenerationStats of the reply that just ended
    notice = Signal(str)
    contextChanged = Signal(int, int)  # tokens in the context, context size
    chatUpdated = Signal(int)  # a chat's title or order changed (or it was just created)
    # A Send's message was stored (True) or not (False: its images could not be saved, or Stop
    # or another chat came first): the composer lets its text and images go only on True.
    sendEnded = Signal(bool)

    def __init__(
        self,
        store: Store,
        bridge: EngineBridge,
        model: MessageListModel,
        parent: QObject | None = None,
        tools: ToolSources | None = None,
        documents: DocumentAsker | None = None,
    ) -> None:
        super().__init__(parent)
        self.tools = tools
        # The chat's collections: each question's document context is built before its reply.
        self.documents = documents
        self.tool_driver = ToolDriver(store, self)
        # The tool_choice of each step of a loop (1-based): "auto" lets the model decide;
        # "required" or a tool's name makes the reply a call (grammar-constrained).
        self.tool_choice: Callable[[int], str] = lambda _step: "auto"
        self._store = store
        self._bridge = bridge
        self.model = model
        self._session = ChatSession(store)
        self._reply: Reply | None = None
        self._last_writer: ReplyWriter | None = None
        self._saving: tuple[int, str] | None = None  # a Send's save ticket and text
        self.image_steps = ImageSteps(store, self)
        self.image_steps.saved.connect(self._on_images_saved)
        self.image_steps.historyBuilt.connect(self._on_history_built)
        self.image_steps.failed.connect(self._on_image_step_failed)
        bridge.promptInfo.connect(self._on_prompt_info)
        bridge.tokens.connect(self._on_tokens)
        bridge.done.connect(self._on_done)
        bridge.failed.connect(self._on_failed)
        bridge.toolCalls.connect(self._on_tool_calls)
        self.tool_driver.resultSaved.connect(self._on_tool_result)
        self.tool_driver.replyWanted.connect(self._continue_loop)
        self.tool_driver.finished.connect(self._on_loop_finished)
        if documents is not None:
            documents.ready.connect(self._on_documents_ready)
            documents.failed.connect(self._on_documents_failed)

    # -- state ---------------------------------------------------------------------------------
    @property
    def chat_id(self) -> int | None:
        return self._session.chat_id

    @property
    def busy(self) -> bool:
        return self._saving is not None or self._reply is not None or self.tool_driver.active

    @property
    def current_job(self) -> int | None:
        return self._reply.job_id if self._reply else None

    def saved(self) -> bool:
        """Whether the last reply's text has all reached the database."""
        return self._last_writer is None or self._last_writer.wait(0)

    def set_chat(self, chat_id: int | None) -> None:
        """Show another chat. A reply still streaming in the old chat is stopped (and kept)."""
        if chat_id == self.chat_id:
            return
        self.stop()
        self._session.chat_id = chat_id
        self._load()

    def _load(self) -> None:
        chat_id = self.chat_id
        if chat_id is None:
            self.model.set_messages([])
        else:
            self.model.set_messages(self._store.list_messages(chat_id),
                                    self._store.message_versions(chat_id))

    # -- user actions --------------------------------------------------------------------------
    def send(self, text: str, images: Sequence[Attachment] = ()) -> bool:
        """Add the user's message (with its images) and start a reply; False (nothing sent)
        for an empty message, or images the loaded model cannot read (`notice` says why).
        Images are saved on a worker first (busy meanwhile); `sendEnded` gives the outcome."""
        if not (text.strip() or images) or self.busy or not self._readable(images):
            return False
        if images:
            self._saving = (self.image_steps.save(images), text)
            self.busyChanged.emit(True)
        else:
            self._store_message(text, ())
        return True

    def _on_images_saved(self, ticket: int, stored: tuple[StoredImage, ...]) -> None:
        if self._saving is None or self._saving[0] != ticket:
            return  # stopped, or another chat opened: the composer kept the message
        text = self._saving[1]
        self._saving = None
        self._store_message(text, stored)
        if not self.busy:  # no reply started (an unusable schema said why)
            self.busyChanged.emit(False)

    def _store_message(self, text: str, stored: tuple[StoredImage, ...]) -> None:
        chat, created = self._session.ensure_chat()
        if created:
            self.model.set_messages([])
        self.model.append_message(
            self._session.add_user_message(chat, text, self.model.records(), images=stored)
        )
        self._start_reply(chat.id)
        self.sendEnded.emit(True)

    def _end_saving(self, message: str) -> None:
        self._saving = None
        self.busyChanged.emit(False)
        self.sendEnded.emit(False)
        self.notice.emit(message)

    def _readable(self, images: Sequence[Attachment]) -> bool:
        """Images (new or earlier in the branch) go only to a model with a projector: refused
        with the reason rather than silently dropped."""
        if self._bridge.loaded_projector or not (
                images or any(r.images_json for r in self.model.records())):
            return True
        self.notice.emit(no_vision_message(self._bridge.loaded_path, vision_models(self._store)))
        return False

    def stop(self) -> None:
        """Ask the engine to stop the reply; `done` then arrives and the text is kept. A Send
        still saving its images is dropped (the composer keeps the message)."""
        if self._saving is not None:
            self._end_saving("Not sent: stopped while its images were saved. Your message is "
                             "still there.")
        elif self._reply is not None:
            if self._reply.job_id == NO_JOB:
                self._reply.stopped = True  # ended when the image or document step returns
            else:
                self._bridge.cancel(self._reply.job_id)
        elif self.tool_driver.active:
            self.tool_driver.stop()

    def regenerate(self) -> bool:
        """A new reply to the last message; the old reply stays, as another version."""
        last = self.model.last_record()
        if self.busy or self.chat_id is None or last is None or last.role != "assistant":
            return False
        self.model.remove_from(last.id)
        self._start_reply(self.chat_id, parent_id=last.parent_id)
        return True

    def continue_reply(self) -> bool:
        """Continue the last reply (stopped on its length limit or by the user) in the same
        message: the engine reuses the cached prompt and the text so far."""
        last = self.model.last_record()
        if self.busy or self.chat_id is None or not can_continue(last) or last is None:
            return False
        info = self._bridge.loaded_info
        started = self._session.continue_reply(
            self.model.records(), last,
            keep_reasoning=template_keeps_reasoning(info.chat_template if info else None))
        if started is None:
            return False
        self.model.replace_last(started.placeholder)
        self._last_writer = started.writer
        self._reply = Reply(NO_JOB, self.chat_id, started)
        self._prepare(self._reply)
        self.busyChanged.emit(True)
        return True

    def edit_and_resend(self, message_id: int, new_text: str) -> bool:
        """Send new text in place of a user message and reply to it; the old message and what
        followed it stay, as another version."""
        if self.busy or self.chat_id is None or not new_text.strip() or not self._readable(()):
            return False
        chat = self._store.get_chat(self.chat_id)
        position = self.model.position_of(message_id)
        if chat is None or position is None or self.model.record_at(position).role != "user":
            return False
        edited = self.model.record_at(position)
        self.model.remove_from(message_id)
        self.model.append_message(self._session.add_user_message(
            chat, new_text, self.model.records(), parent_id=edited.parent_id,
            images=edited.images))
        self._start_reply(chat.id)
        return True

    def show_version(self, message_id: int, step: int) -> bool:
        """Show the previous (-1) or next (+1) version of a message, with its own continuation."""
        target = self.model.sibling_version(message_id, step)
        if self.busy or self.chat_id is None or target is None:
            return False
        branch = self._store.show_version(self.chat_id, target)
        return bool(branch) and self.model.replace_from(message_id, branch)

    def delete_version(self, message_id: int) -> bool:
        """Delete one version of a message (and what followed it); another takes its place."""
        if self.busy or self.chat_id is None or self.model.version_of(message_id) is None:
            return False
        try:
            shown = self._store.delete_version(self.chat_id, message_id)
        except (LookupError, ValueError):
            return False
        if shown is not None:
            self.model.replace_from(message_id, self._store.show_version(self.chat_id, shown))
        self.model.set_versions(self._store.message_versions(self.chat_id))
        self.notice.emit("Deleted that version.")
        return True

    def reveal(self, message_id: int) -> bool:
        """Put a message on screen (a search hit on another branch switches to that branch)."""
        if self.model.position_of(message_id) is not None:
            return True
        if self.busy or self.chat_id is None:
            return False
        if not self._store.show_version(self.chat_id, message_id):
            return False
        self._load()
        return True

    # -- starting a reply --------------------------------------------------------------------
    def _start_reply(self, chat_id: int, parent_id: int | None | _Unset = UNSET) -> None:
        info = self._bridge.loaded_info
        started = self._session.start_reply(
            self.model.records(), parent_id, model_path=self._bridge.loaded_path or None,
            keep_reasoning=template_keeps_reasoning(info.chat_template if info else None))
        if started is None:
            return
        self.model.append_message(started.placeholder)
        self.model.set_versions(self._store.message_versions(chat_id))
        self._last_writer = started.writer
        if started.problem is not None:
            # Structured output is on with an unusable schema: say so in the reply's place.
            ChatSession.fail_reply(started, started.problem)
            self.model.set_last_state("failed", error=started.problem)
            self.chatUpdated.emit(chat_id)
            self.notice.emit(started.problem)
            return
        was_busy = self.busy  # a loop's next reply: the page is busy already
        self._reply = Reply(NO_JOB, chat_id, started)
        self._prepare(self._reply)
        if not was_busy:
            self.busyChanged.emit(True)
        self.chatUpdated.emit(chat_id)

    def _on_image_step_failed(self, ticket: int, message: str) -> None:
        if self._saving is not None and self._saving[0] == ticket:
            self._end_saving(message)
        elif (self._reply is not None and self._reply.images_ticket == ticket
              and self._reply.job_id == NO_JOB):
            self._on_failed(NO_JOB, message, "images")

    def _continue_loop(self) -> None:
        """Every call of the last step is answered: the model reads the results and goes on."""
        if self.chat_id is None or self._reply is not None:
            return
        self._start_reply(self.chat_id)

    def _on_tool_result(self, record: MessageRecord) -> None:
        if record.chat_id == self.chat_id:
            self.model.append_message(record)

    def _on_loop_finished(self, notice: str) -> None:
        if notice:
            self.notice.emit(notice)
        if self._reply is None:
            self.busyChanged.emit(False)

    # -- engine events -------------------------------------------------------------------------
    def _showing(self, reply: Reply) -> bool:
        last: MessageRecord | None = self.model.last_record()
        return reply.chat_id == self.chat_id and last is not None and last.id == reply.message_id

    def _on_prompt_info(self, job: int, prompt_tokens: int, n_ctx: int, dropped: int) -> None:
        if self._reply is None or job != self._reply.job_id:
            return
        self.contextChanged.emit(prompt_tokens, n_ctx)
        if dropped > 0:
            self.notice.emit(dropped_notice(dropped))

    def _on_tokens(self, job: int, text: str) -> None:
        reply = self._reply
        if reply is None or job != reply.job_id:
            return
        reply.writer.append(text)
        if self._showing(reply):
            self.model.append_to_last(text)

    def _on_tool_calls(self, job: int, calls: tuple[ToolCall, ...]) -> None:
        if self._reply is not None and job == self._reply.job_id:
            self._reply.calls = tuple(calls)

    def _on_done(self, job: int, _text: str, stats: GenerationStats) -> None:
        reply = self._reply
        if reply is None or job != reply.job_id:
            return
        cancelled = stats.stop_reason == "cancelled"
        ended = ChatSession.end_reply(reply.started, stats)
        calls = reply.calls if not cancelled and self.tool_driver.active else ()
        if calls:
            # Saved with the reply, so a reopened chat (and the model) sees what was called.
            data = calls_data(calls)
            self._store.update_message(reply.message_id, tool=data)
            if self._showing(reply):
                self.model.replace_last(dataclasses.replace(
                    self.model.last_record(), tool_json=json.dumps(data)))
        if self._showing(reply):  # the stats go on the record too: Continue reads them
            self.model.replace_last(dataclasses.replace(self.model.last_record(),
                                                        stats_json=ended.stats_json))
            self.model.set_last_state(ended.status, stats=ended.stats)
        self._reply = None
        if calls:
            self.tool_driver.handle(reply.chat_id, calls)
        elif self.tool_driver.active:
            self.tool_driver.reply_ended()  # the loop's answer: `finished` ends the busy state
        else:
            self._end_reply()
        self.statsChanged.emit(ended.stats or stats)
        if cancelled:
            self.notice.emit("Stopped; the partial reply is kept.")

    def _on_failed(self, job: int, message: str, _kind: str) -> None:
        reply = self._reply
        if reply is None or job != reply.job_id:
            return
        ChatSession.fail_reply(reply.started, message)
        if self._showing(reply):
            self.model.set_last_state("failed", error=message)
        if self.tool_driver.active:
            self._reply = None
            self.tool_driver.reply_ended()
        else:
            self._end_reply()
        self.notice.emit(message)

    def _end_reply(self) -> None:
        self._reply = None
        if not self.tool_driver.active:
            self.busyChanged.emit(False)
