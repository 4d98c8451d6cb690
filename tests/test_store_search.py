"""The Store's message search (FTS5) and the reply writer that saves streaming replies."""

from __future__ import annotations

import threading
import time

import pytest

from app.engine.types import GenerationStats
from app.models.reply_writer import ReplyWriter
from app.models.store import Store, fts_query


def test_search_finds_words_with_chat_title_and_snippet(store: Store) -> None:
    chat = store.create_chat("Birds")
    store.add_message(chat.id, "user", "Tell me about the migration of swallows")
    msg = store.add_message(chat.id, "assistant", "Swallows fly south in autumn.")
    store.add_message(chat.id, "user", "Unrelated text")
    hits = store.search_messages("swallows")
    assert {h.message_id for h in hits} == {msg.id, msg.id - 1}
    hit = next(h for h in hits if h.message_id == msg.id)
    assert (hit.chat_id, hit.chat_title, hit.role) == (chat.id, "Birds", "assistant")
    assert "[Swallows]" in hit.snippet
    assert [h.message_id for h in store.search_messages("swal")] != []  # prefix on last term
    assert [h.message_id for h in store.search_messages("fly autumn")] == [msg.id]
    assert len(store.search_messages("swallows", limit=1)) == 1


def test_search_stays_in_sync_after_update_and_delete(store: Store) -> None:
    chat = store.create_chat()
    msg = store.add_message(chat.id, "assistant", "original walrus")
    store.update_message(msg.id, content="edited narwhal")
    assert store.search_messages("walrus") == []
    assert [h.message_id for h in store.search_messages("narwhal")] == [msg.id]
    store.update_message(msg.id, status="complete")  # no content change: index untouched
    assert [h.message_id for h in store.search_messages("narwhal")] == [msg.id]
    store.delete_messages_from(chat.id, msg.id)
    assert store.search_messages("narwhal") == []
    assert store.integrity_ok()


@pytest.mark.parametrize(
    "raw", ['"', "AND (", "*", "", "   ", 'foo"bar', "NEAR(a b", "-x", "a:b", "^", "OR", "(("]
)
def test_search_accepts_any_input(store: Store, raw: str) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "foo bar AND or near x a b")
    assert isinstance(store.search_messages(raw), list)


def test_search_treats_operators_as_words(store: Store) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "cats AND dogs")
    store.add_message(chat.id, "user", "cats only")
    assert len(store.search_messages("cats AND dogs")) == 1
    assert fts_query('foo"bar (baz') == '"foo""bar" "(baz"*'
    assert fts_query("* ( )") is None


# streaming replies


def _saved(store: Store, message_id: int) -> str:
    message = store.get_message(message_id)
    return message.content if message is not None else ""


def test_reply_writer_saves_new_text_in_batches_off_the_callers_thread(store: Store) -> None:
    chat = store.create_chat()
    msg = store.add_message(chat.id, "assistant", "", status="streaming")
    saves: list[tuple[str, str]] = []  # (thread, piece)
    real_save = store.save_reply

    def recording_save(message_id: int, piece: str, **fields: object) -> bool:
        saves.append((threading.current_thread().name, piece))
        return real_save(message_id, piece, **fields)  # type: ignore[arg-type]

    store.save_reply = recording_save  # type: ignore[method-assign]
    writer = ReplyWriter(store, msg.id, interval=0.05)
    tokens = [f"word{i} " for i in range(200)]
    for token in tokens[:100]:
        writer.append(token)
    deadline = time.monotonic() + 5
    while _saved(store, msg.id) != "".join(tokens[:100]) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Saved while streaming, so a crash keeps it, in fewer writes than tokens.
    assert _saved(store, msg.id) == "".join(tokens[:100])
    assert store.get_message(msg.id).status == "streaming"  # type: ignore[union-attr]
    for token in tokens[100:]:
        writer.append(token)
    writer.finish(GenerationStats(generated_tokens=200))
    assert writer.wait(5)
    final = store.get_message(msg.id)
    assert final is not None and (final.content, final.status) == ("".join(tokens), "complete")
    assert final.stats is not None and final.stats.generated_tokens == 200
    assert 2 <= len(saves) < 20
    assert threading.current_thread().name not in {name for name, _ in saves}
    # Each save carried only the text that was new: the pieces add up to the reply once.
    assert "".join(piece for _, piece in saves) == final.content
    writer.append(" late token")  # after finish: ignored
    assert writer.wait(5) and _saved(store, msg.id) == "".join(tokens)


def test_reply_writer_stop_and_fail_keep_text(store: Store) -> None:
    chat = store.create_chat()
    stopped = store.add_message(chat.id, "assistant", "", status="streaming")
    failed = store.add_message(chat.id, "assistant", "", status="streaming")

    writer = ReplyWriter(store, stopped.id)
    writer.append("part")
    writer.stop(GenerationStats(stop_reason="cancelled"))
    assert writer.wait(5)
    got = store.get_message(stopped.id)
    assert got is not None and (got.content, got.status) == ("part", "partial")
    assert got.stats is not None and got.stats.stop_reason == "cancelled"

    writer = ReplyWriter(store, failed.id)
    writer.append("so far")
    writer.fail("model crashed")
    assert writer.wait(5)
    got = store.get_message(failed.id)
    assert got is not None
    assert (got.content, got.status, got.error) == ("so far", "failed", "model crashed")


def test_reply_writer_survives_deleted_message(store: Store) -> None:
    chat = store.create_chat()
    msg = store.add_message(chat.id, "assistant", "", status="streaming")
    writer = ReplyWriter(store, msg.id, interval=0.0)
    store.delete_messages_from(chat.id, msg.id)  # deleted while streaming
    writer.append("orphan text")
    writer.finish()
    assert writer.wait(5)
    assert store.count_messages(chat.id) == 0


def test_a_streaming_reply_is_searchable_once_it_ends(store: Store) -> None:
    chat = store.create_chat()
    msg = store.add_message(chat.id, "assistant", "", status="streaming")
    writer = ReplyWriter(store, msg.id, interval=0.01)
    writer.append("the okapi lives in forests")
    writer.flush()
    deadline = time.monotonic() + 5
    while not _saved(store, msg.id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _saved(store, msg.id) == "the okapi lives in forests"
    assert store.search_messages("okapi") == []  # not indexed on every save
    writer.append(" and eats leaves")
    writer.finish()
    assert writer.wait(5)
    assert [h.message_id for h in store.search_messages("okapi leaves")] == [msg.id]
    store.update_message(msg.id, content="renamed to zebra")
    assert store.search_messages("okapi") == []
    assert [h.message_id for h in store.search_messages("zebra")] == [msg.id]
    assert store.integrity_ok()


# model files, presets, settings
