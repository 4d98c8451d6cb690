"""The chat controller's reply in progress: which job streams it, into which message."""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.types import ToolCall
from app.models.reply_writer import ReplyWriter
from app.services.chat_session import StartedReply

NO_JOB = -1
STOPPED_READING = "Stopped while reading the chat's documents."
STOPPED_IMAGES = "Stopped while reading the chat's images."


@dataclass
class Reply:
    job_id: int  # NO_JOB while the image or document step runs
    chat_id: int
    started: StartedReply
    calls: tuple[ToolCall, ...] = ()  # what the reply asked to call (tools on only)
    ticket: int = 0  # the document step's, while it runs
    images_ticket: int = 0  # the image step's (the history built off the GUI thread)
    stopped: bool = False  # Stop was pressed during the image or document step

    @property
    def message_id(self) -> int:
        return self.started.placeholder.id

    @property
    def writer(self) -> ReplyWriter:
        return self.started.writer
