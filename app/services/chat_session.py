"""One chat's rules, the same for the window and `hearth chat`: what history the model is sent,
the title, the streaming reply's placeholder row and its saving, and versions (regenerate and
edit-and-resend add a sibling; nothing is deleted).

The session prepares and records; it never talks to the engine. The window sends the history
through its bridge, the CLI through its EngineHost, and both hand the reply's ending back here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.engine.inference.reasoning import CLOSE_TAG, OPEN_TAG, reasoning_apart
from app.engine.types import ChatMessage, DecodedImage, GenerationStats, Sampling
from app.models.image_records import StoredImage
from app.models.records import ChatRecord, MessageRecord
from app.models.reply_writer import ReplyWriter
from app.models.store import Store
from app.models.store_values import UNSET, _Unset
from app.services.chat_images import turn_images
from app.services.response_schema import parse_schema_text

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 40
# Failed, empty and still-streaming replies are not part of the conversation the model continues.
HISTORY_STATUSES = ("complete", "partial")


def title_from(text: str) -> str:
    """A chat title from its first message: the first line, cut at a word near 40 characters."""
    line = " ".join(text.split())
    if len(line) <= TITLE_LENGTH:
        return line
    cut = line[:TITLE_LENGTH].rsplit(" ", 1)[0]
    return (cut if len(cut) >= TITLE_LENGTH // 2 else line[:TITLE_LENGTH]).rstrip() + "…"


def dropped_notice(dropped: int) -> str:
    """What the overflow policy did, in words, when it dropped old messages to fit."""
    if dropped == 1:
        return "Dropped the oldest message to fit the context"
    return f"Dropped the {dropped} oldest messages to fit the context"


NOT_RUN_TEXT = "Not run: the user stopped the chat before this call ran."


def history_for_model(system_prompt: str, branch: Iterable[MessageRecord], *,
                      keep_reasoning: bool = False,
                      images: Callable[[MessageRecord], tuple[DecodedImage, ...]] | None = None,
                      ) -> list[ChatMessage]:
    """The messages the model is sent for a branch: the system prompt, then every finished
    (complete or stopped) non-empty message of the branch, oldest first. An assistant turn
    keeps the calls it made, and each tool result is a "tool" turn naming its call; a call the
    user stopped before it ran is answered as not run, since templates refuse a call without
    its result.

    Replies go back without their reasoning (it wastes context, and reasoning models are
    trained without it) unless ``keep_reasoning`` (pass `template_keeps_reasoning(chat_template)`
    for the loaded model's template): then it goes as ``reasoning_content``, which the prompt
    format gives the template in the form it reads.

    ``images``: a user turn's attached images, decoded (`turn_images` over the Store's
    folder); without it turns go as text only."""
    messages = [ChatMessage("system", system_prompt)] if system_prompt.strip() else []
    unanswered: list[ChatMessage] = []  # results still owed to the last turn's calls
    for record in branch:
        if record.role == "system" or record.status not in HISTORY_STATUSES:
            continue
        turn = record.tool_turn
        if record.role == "tool":
            if turn is not None:  # a result is sent even when empty: the call needs an answer
                messages.append(ChatMessage("tool", record.content, tool_call_id=turn.call_id,
                                            name=turn.name))
                unanswered = [m for m in unanswered if m.tool_call_id != turn.call_id]
            continue
        calls = record.tool_calls
        content, reasoning = record.answer_and_reasoning
        if not keep_reasoning:
            reasoning = ""
        elif not record.reasoning:  # a row from before 0012 (or no reasoning): as written
            content, reasoning = record.content, ""
        pictures = images(record) if images is not None and record.role == "user" else ()
        if content.strip() or reasoning.strip() or calls or pictures:
            messages.extend(unanswered)
            messages.append(ChatMessage(record.role, content, tool_calls=calls,
                                        images=pictures, reasoning_content=reasoning))
            unanswered = [ChatMessage("tool", NOT_RUN_TEXT, tool_call_id=c.id, name=c.name)
                          for c in calls]
    return messages + unanswered


def can_continue(record: MessageRecord | None) -> bool:
    """Whether Continue can resume this reply: it stopped on its length limit, or the user
    stopped it (a reply that called tools, failed or filled the context cannot)."""
    if record is None or record.role != "assistant" or record.tool_calls:
        return False
    if record.status == "partial":
        return True
    stats = record.stats if record.stats_json else None
    return record.status == "complete" and stats is not None and stats.stop_reason == "length"


def continuation_text(record: MessageRecord) -> str:
    """A reply's text as the model wrote it, for Continue: stored reasoning goes back into its
    think tags (left open when the reply stopped inside it; without the opening tag where the
    template wrote that)."""
    if not record.reasoning:
        return record.content
    stats = record.stats if record.stats_json else None
    head = "" if stats is not None and stats.opens_thinking else OPEN_TAG + "\n"
    if not record.content:
        return head + record.reasoning
    return f"{head}{record.reasoning}\n{CLOSE_TAG}\n\n{record.content}"


def merged_stats(earlier: GenerationStats, later: GenerationStats) -> GenerationStats:
    """One reply's stats over two runs (Continue): tokens and times add up, the speed is over
    both runs' decoding, and the prompt and context figures are the later run's."""
    generated = earlier.generated_tokens + later.generated_tokens
    decoding = (max(0.0, earlier.total_seconds - earlier.time_to_first_token)
                + max(0.0, later.total_seconds - later.time_to_first_token))
    return dataclasses.replace(
        later, generated_tokens=generated,
        time_to_first_token=earlier.time_to_first_token or later.time_to_first_token,
        total_seconds=earlier.total_seconds + later.total_seconds,
        thinking_seconds=earlier.thinking_seconds + later.thinking_seconds,
        tokens_per_second=generated / decoding if decoding > 0 else later.tokens_per_second,
        opens_thinking=earlier.opens_thinking or later.opens_thinking)


@dataclass(frozen=True)
class HistorySource:
    """What a reply's history is built from. Building it decodes the branch's images that are
    not kept yet (`DECODED`: a reopened chat's, until its warm-up has run), which can take a
    while: the window builds it on a worker thread when `has_images`."""

    system_prompt: str
    branch: tuple[MessageRecord, ...]
    keep_reasoning: bool
    images_folder: Path

    @property
    def has_images(self) -> bool:
        return any(r.role == "user" and r.images_json for r in self.branch)

    def build(self) -> list[ChatMessage]:
        folder = self.images_folder
        return history_for_model(self.system_prompt, self.branch,
                                 keep_reasoning=self.keep_reasoning,
                                 images=lambda record: turn_images(record, folder))


@dataclass
class StartedReply:
    """A reply about to stream: its placeholder row, what to send, and the writer saving it."""

    chat: ChatRecord
    placeholder: MessageRecord
    source: HistorySource
    writer: ReplyWriter
    # Structured output on: the schema the reply must follow (the engine makes it a grammar).
    response_schema: dict[str, Any] | None = None
    # Why the reply cannot be generated (the switch is on but the schema is unusable): the
    # caller fails the reply with it instead of sending.
    problem: str | None = None
    # Continue: the reply's text so far (the engine's ``continue_from``) and its stats then.
    continue_from: str = ""
    earlier: GenerationStats | None = None
    built: list[ChatMessage] | None = None

    @property
    def history(self) -> list[ChatMessage]:
        """The messages the model is sent, built on first use (see `HistorySource`)."""
        if self.built is None:
            self.built = self.source.build()
        return self.built


class ChatSession:
    """One stored chat (created on the first message) and its rules, over the Store."""

    def __init__(self, store: Store, chat_id: int | None = None) -> None:
        self.store = store
        self.chat_id = chat_id

    def chat(self) -> ChatRecord | None:
        return self.store.get_chat(self.chat_id) if self.chat_id is not None else None

    def ensure_chat(self, system_prompt: str = "", sampling: Sampling | None = None,
                    model_path: str = "") -> tuple[ChatRecord, bool]:
        """The session's chat, created (titled "New chat") if it has none; True if created."""
        chat = self.chat()
        if chat is not None:
            return chat, False
        chat = self.store.create_chat(DEFAULT_TITLE, system_prompt, sampling or Sampling(),
                                      model_path)
        self.chat_id = chat.id
        return chat, True

    def add_user_message(self, chat: ChatRecord, text: str, branch: Iterable[MessageRecord],
                         parent_id: int | None | _Unset = UNSET,
                         images: tuple[StoredImage, ...] = ()) -> MessageRecord:
        """Store a user message (after `parent_id`, default the end of the branch) with its
        images (saved with `Store.save_image`); the first one names a chat that still has the
        default title."""
        if chat.title == DEFAULT_TITLE and not any(r.role == "user" for r in branch):
            self.store.rename_chat(chat.id, title_from(text or "Image"))
        return self.store.add_message(chat.id, "user", text, parent_id=parent_id,
                                      images=images)

    def start_reply(self, branch: Iterable[MessageRecord], parent_id: int | None | _Unset = UNSET,
                    model_path: str | None = None, *, keep_reasoning: bool = False
                    ) -> StartedReply | None:
        """Add the streaming placeholder (after `parent_id`: a regenerate makes it a sibling of
        the old reply) and return the history for `branch`, the messages before it
        (``keep_reasoning``: see `history_for_model`), built when first read."""
        chat = self.chat()
        if chat is None:
            return None
        source = HistorySource(chat.system_prompt, tuple(branch), keep_reasoning,
                               self.store.images_folder)
        if model_path and chat.model_path != model_path:
            self.store.update_chat(chat.id, model_path=model_path)
        placeholder = self.store.add_message(chat.id, "assistant", "", status="streaming",
                                             parent_id=parent_id)
        started = StartedReply(chat, placeholder, source, ReplyWriter(self.store, placeholder.id))
        if chat.structured_output:
            check = parse_schema_text(chat.response_schema)
            started.response_schema = check.schema
            if check.schema is None:
                started.problem = ("Structured output is on, but its schema is unusable: "
                                   + check.message)
        return started

    def continue_reply(self, branch: Iterable[MessageRecord], reply: MessageRecord, *,
                       keep_reasoning: bool = False) -> StartedReply | None:
        """Continue ``reply`` (the last of ``branch``, `can_continue`) in the same message: its
        text goes back to "streaming" as one text again (reasoning rejoined) and a writer
        appends the rest; the history is the messages before it. None when it can't."""
        chat = self.chat()
        if chat is None or chat.structured_output or not can_continue(reply):
            return None
        before = tuple(r for r in branch if r.id != reply.id)
        source = HistorySource(chat.system_prompt, before, keep_reasoning,
                               self.store.images_folder)
        text = continuation_text(reply)
        if not self.store.update_message(reply.id, content=text, reasoning=None,
                                         status="streaming", error=None):
            return None
        placeholder = dataclasses.replace(reply, content=text, reasoning=None,
                                          status="streaming", error=None)
        writer = ReplyWriter(self.store, reply.id, initial=text)
        return StartedReply(chat, placeholder, source, writer, continue_from=text,
                            earlier=reply.stats)

    @staticmethod
    def end_reply(reply: StartedReply, stats: GenerationStats) -> MessageRecord:
        """The reply ended: kept as complete, or as partial when it was stopped. A continued
        reply's stats count both runs."""
        stopped = stats.stop_reason == "cancelled"
        if reply.earlier is not None:
            stats = merged_stats(reply.earlier, stats)
        if stopped:
            reply.writer.stop(stats)
        else:
            reply.writer.finish(stats)
        text = reply.writer.text
        answer, reasoning = reasoning_apart(text, starts_in_thinking=stats.opens_thinking)
        if not reasoning:
            answer = text
        return dataclasses.replace(reply.placeholder, content=answer, reasoning=reasoning or None,
                                   status="partial" if stopped else "complete",
                                   stats_json=json.dumps(stats.to_dict()))

    @staticmethod
    def fail_reply(reply: StartedReply, message: str) -> MessageRecord:
        """The engine failed: the text so far is kept, marked failed with the reason."""
        reply.writer.fail(message)
        return dataclasses.replace(reply.placeholder, content=reply.writer.text,
                                   status="failed", error=message)
