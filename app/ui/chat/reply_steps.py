"""The steps between a chat reply's start and its engine job, for `ChatController`: the history
is built (on a worker when it holds images, which may still need decoding: DESIGN rule 3), a
question in a chat with collections gets its document context (app.ui.documents.asking) and the
reply's sources saved, then the job is sent with the tools the reply may call.

While a step runs the reply's job is `NO_JOB`; Stop marks it and the step's return ends it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from app.engine.types import ChatMessage
from app.models.document_records import ReplySources
from app.models.store import Store
from app.services.chat_session import StartedReply
from app.services.documents import DocumentContext
from app.services.tool_loop import ToolLoop, max_steps
from app.ui.bridge import EngineBridge
from app.ui.chat.image_steps import ImageSteps
from app.ui.chat.message_model import MessageListModel
from app.ui.chat.reply_state import NO_JOB, STOPPED_IMAGES, STOPPED_READING, Reply
from app.ui.chat.tool_driver import ToolDriver
from app.ui.chat.tool_sources import ToolSources
from app.ui.documents.asking import DocumentAsker


class ReplySteps:
    """Mixin of `ChatController` (which owns these attributes and `_on_failed`, `_showing`)."""

    _reply: Reply | None
    _store: Store
    _bridge: EngineBridge
    model: MessageListModel
    image_steps: ImageSteps
    documents: DocumentAsker | None
    tools: ToolSources | None
    tool_driver: ToolDriver
    tool_choice: Callable[[int], str]
    _on_failed: Callable[[int, str, str], None]
    _showing: Callable[[Reply], bool]

    def _prepare(self, reply: Reply) -> None:
        """The history to send: built on a worker when it holds images (a reopened chat's may
        not be decoded yet), else here."""
        if reply.started.source.has_images:
            reply.images_ticket = self.image_steps.build_history(reply.started.source)
        else:
            self._history_ready(reply, reply.started.history)

    def _on_history_built(self, ticket: int, history: list[ChatMessage]) -> None:
        reply = self._reply
        if reply is None or reply.images_ticket != ticket or reply.job_id != NO_JOB:
            return
        reply.images_ticket = 0
        if reply.stopped:
            self._on_failed(NO_JOB, STOPPED_IMAGES, "images")
            return
        reply.started.built = history
        self._history_ready(reply, history)

    def _history_ready(self, reply: Reply, history: list[ChatMessage]) -> None:
        """A question in a chat with collections gets its document context first."""
        model = self._bridge.loaded_path
        if (not reply.started.continue_from and self.documents is not None and model and history
                and history[-1].role == "user" and self.documents.wanted(reply.chat_id)):
            reply.ticket = self.documents.ask(reply.chat_id, history, model, self._bridge.n_ctx,
                                              reply.started.chat.sampling.max_tokens)
        else:
            self._send(reply, history)

    def _send(self, reply: Reply, history: list[ChatMessage]) -> None:
        started = reply.started
        tools, choice = self._tools_for(started) if not started.continue_from else ([], "auto")
        reply.job_id = self._bridge.chat(history, started.chat.sampling,
                                         started.chat.overflow_policy, started.response_schema,
                                         tools, choice, continue_from=started.continue_from)

    def _on_documents_ready(self, ticket: int, history: list[ChatMessage],
                            found: DocumentContext) -> None:
        reply = self._reply
        if reply is None or reply.ticket != ticket or reply.job_id != NO_JOB:
            return
        sources = ReplySources(found.mode, found.explanation, found.citations)
        self._store.update_message(reply.message_id, sources=sources)
        if self._showing(reply):
            self.model.replace_last(dataclasses.replace(
                self.model.last_record(), sources_json=json.dumps(sources.to_dict())))
        if reply.stopped:
            self._on_documents_failed(ticket, STOPPED_READING)
            return
        self._send(reply, history)

    def _on_documents_failed(self, ticket: int, message: str) -> None:
        reply = self._reply
        if reply is None or reply.ticket != ticket or reply.job_id != NO_JOB:
            return
        self._on_failed(NO_JOB, STOPPED_READING if reply.stopped else message, "documents")

    def _tools_for(self, started: StartedReply) -> tuple[list[dict], str]:
        """The tools this reply may call and its tool_choice; a first reply starts the loop."""
        chat = started.chat
        if not chat.tools_enabled or chat.structured_output or self.tools is None:
            return [], "auto"
        driver = self.tool_driver
        if not driver.active:
            self.tools.ensure_connected()
            driver.begin(ToolLoop(self.tools.box, self.tools.permissions, max_steps(self._store)))
        loop = driver.loop
        assert loop is not None
        return loop.offered(), self.tool_choice(loop.step + 1)
