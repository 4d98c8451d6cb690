"""The chat rules shared by the window and `hearth chat` (app.services.chat_session), on a real
Store and, for a whole turn, a real tiny model on the engine host."""

from __future__ import annotations

import queue

import pytest

from app.engine.inference.events import Done, Failed, Loaded, Token
from app.engine.serving.host import EngineHost
from app.engine.types import ChatMessage, GenerationStats, LoadSettings, Sampling
from app.services.chat_session import DEFAULT_TITLE, ChatSession, history_for_model

GREEDY = Sampling(temperature=0.0, max_tokens=12, repeat_penalty=1.0)


@pytest.fixture
def host():
    events: queue.Queue = queue.Queue()
    engine = EngineHost(events.put)
    engine.events = events
    yield engine
    engine.shutdown()


def _run(host: EngineHost, job: int, on_token) -> object:
    while True:
        event = host.events.get(timeout=60)
        if event.job_id != job:
            continue
        if isinstance(event, Token):
            on_token(event.text)
        elif isinstance(event, Done | Failed | Loaded):
            return event


def _turn(host: EngineHost, session: ChatSession, text: str, branch: list) -> list:
    """One user message and a real streamed reply, as a front end does it; the new branch."""
    chat, _ = session.ensure_chat()
    branch = [*branch, session.add_user_message(chat, text, branch)]
    started = session.start_reply(branch)
    event = _run(host, host.chat(started.history, GREEDY), started.writer.append)
    assert isinstance(event, Done), event
    reply = ChatSession.end_reply(started, event.stats)
    assert started.writer.wait(10)
    return [*branch, reply]


def test_history_sends_only_finished_non_empty_messages(hearth_store):
    store = hearth_store
    chat = store.create_chat("c", "be brief")
    store.add_message(chat.id, "user", "first")
    store.add_message(chat.id, "assistant", "half an answer", status="partial")
    store.add_message(chat.id, "user", "second")
    store.add_message(chat.id, "assistant", "boom text", status="failed", error="boom")
    store.add_message(chat.id, "assistant", "   ")
    store.add_message(chat.id, "user", "third")
    store.add_message(chat.id, "assistant", "still coming", status="streaming")

    history = history_for_model(chat.system_prompt, store.list_messages(chat.id))

    assert history == [
        ChatMessage("system", "be brief"),
        ChatMessage("user", "first"),
        ChatMessage("assistant", "half an answer"),
        ChatMessage("user", "second"),
        ChatMessage("user", "third"),
    ]
    assert history_for_model("  ", [])[:1] == []  # a blank system prompt is not sent


def test_first_message_names_the_chat_and_later_ones_do_not(hearth_store):
    session = ChatSession(hearth_store)
    chat, created = session.ensure_chat()
    assert created and chat.title == DEFAULT_TITLE
    first = session.add_user_message(chat, "  why is   the sky blue on a clear afternoon in June?",
                                     [])
    chat = session.chat()
    assert chat.title == "why is the sky blue on a clear…"  # cut at a word
    session.add_user_message(chat, "and at night?", [first])
    assert session.chat().title == chat.title
    assert session.ensure_chat() == (session.chat(), False)

    renamed = ChatSession(hearth_store)
    own, _ = renamed.ensure_chat()
    hearth_store.rename_chat(own.id, "My title")
    renamed.add_user_message(renamed.chat(), "hello", [])
    assert renamed.chat().title == "My title"  # a title the user chose is kept


def test_a_turn_streams_saves_and_feeds_the_next_turn(host, hearth_store, tiny_chat_model):
    assert isinstance(_run(host, host.load(tiny_chat_model, LoadSettings(n_ctx=256)), print),
                      Loaded)
    session = ChatSession(hearth_store)
    branch = _turn(host, session, "hello", [])
    saved = hearth_store.list_messages(session.chat_id)
    assert [(m.role, m.status) for m in saved] == [("user", "complete"),
                                                   ("assistant", "complete")]
    assert saved[1].content == branch[1].content and saved[1].content

    chat = session.chat()
    branch = [*branch, session.add_user_message(chat, "more", branch)]
    started = session.start_reply(branch)
    assert started.history == [ChatMessage("user", "hello"),
                               ChatMessage("assistant", saved[1].content),
                               ChatMessage("user", "more")]
    ChatSession.fail_reply(started, "the engine stopped")
    assert started.writer.wait(10)
    failed = hearth_store.get_message(started.placeholder.id)
    assert (failed.status, failed.error) == ("failed", "the engine stopped")


def test_regenerate_and_edit_keep_the_old_versions(host, hearth_store, tiny_chat_model):
    _run(host, host.load(tiny_chat_model, LoadSettings(n_ctx=256)), print)
    session = ChatSession(hearth_store)
    branch = _turn(host, session, "hello", [])
    old_reply = branch[-1]

    # Regenerate: a new reply beside the old one, sent the same history (not the old reply).
    started = session.start_reply(branch[:-1], parent_id=old_reply.parent_id)
    assert started.history == [ChatMessage("user", "hello")]
    ChatSession.end_reply(started, GenerationStats(stop_reason="cancelled"))
    assert started.writer.wait(10)
    versions = hearth_store.message_versions(session.chat_id)
    assert versions[old_reply.id] == (old_reply.id, started.placeholder.id)
    assert hearth_store.get_message(old_reply.id).content == old_reply.content
    assert hearth_store.get_message(started.placeholder.id).status == "partial"

    # Edit and resend: the edited message is a sibling; the model sees only the new text.
    chat = session.chat()
    edited = session.add_user_message(chat, "hi instead", [], parent_id=branch[0].parent_id)
    again = session.start_reply([edited])
    assert again.history == [ChatMessage("user", "hi instead")]
    ChatSession.fail_reply(again, "x")
    assert again.writer.wait(10)
    assert hearth_store.message_versions(session.chat_id)[branch[0].id] == (branch[0].id,
                                                                            edited.id)
    assert hearth_store.get_chat(session.chat_id).title == "hello"
    assert [m.content for m in hearth_store.list_messages(session.chat_id)][0] == "hi instead"
