"""The Store on a real SQLite file: schema, pragmas, chats, messages, search, models, settings."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from app.engine.types import GenerationStats, ModelInfo, Sampling
from app.models.store import Store


def _schema(db_path: Path) -> dict[str, set[str]]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
    conn.close()
    found: dict[str, set[str]] = {}
    for kind, name in rows:
        found.setdefault(kind, set()).add(name)
    return found


def _info(path: str = "/models/a/b/tiny.gguf", **changes: object) -> ModelInfo:
    info = ModelInfo(
        path=path,
        file_size=123_456_789_012,
        architecture="llama",
        name="Tiny",
        parameter_count=7_000_000_000,
        file_type="Q4_K_M",
        context_length=8192,
        block_count=3,
        embedding_length=64,
        head_count=4,
        head_count_kv=2,
        has_chat_template=True,
        chat_template="{{ messages }}",
        sliding_window=None,
        layer_tensor_bytes=[10, 20, 30],
        other_tensor_bytes=99,
    )
    for key, value in changes.items():
        setattr(info, key, value)
    return info


# schema and connection settings


def test_open_creates_folder_schema_and_fts(db_path: Path) -> None:
    Store.open(db_path).close()
    schema = _schema(db_path)
    assert {"chats", "messages", "model_files", "presets", "settings", "alembic_version"} <= (
        schema["table"]
    )
    assert "messages_fts" in schema["table"]
    assert {"messages_fts_ai", "messages_fts_ad", "messages_fts_au"} <= schema["trigger"]
    assert {"ix_messages_chat_id_id", "ix_chats_updated_at"} <= schema["index"]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0012_message_reasoning",)
        ]
    conn.close()


def test_reopening_keeps_data(db_path: Path) -> None:
    with Store.open(db_path) as store:
        chat = store.create_chat("Kept", system_prompt="be brief")
        store.add_message(chat.id, "user", "hello there")
        store.set_setting("theme", "dark")
    with Store.open(db_path) as store:
        assert [c.title for c in store.list_chats()] == ["Kept"]
        assert store.get_chat(chat.id).system_prompt == "be brief"  # type: ignore[union-attr]
        assert [m.content for m in store.list_messages(chat.id)] == ["hello there"]
        assert store.get_setting("theme") == "dark"
        assert store.integrity_ok()


def test_wal_foreign_keys_and_busy_timeout_are_on(store: Store, db_path: Path) -> None:
    with store._engine.connect() as conn:  # the pragmas are per connection: ask the Store's own
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() > 0
    with sqlite3.connect(db_path) as conn:  # WAL is a property of the file itself
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_store_is_usable_from_several_threads(store: Store) -> None:
    chat = store.create_chat()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(25):
                store.add_message(chat.id, "user", f"thread {n} message {i}")
                store.list_messages(chat.id)
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count_messages(chat.id) == 100


# chats


def test_chat_crud_and_partial_update(store: Store) -> None:
    sampling = Sampling(temperature=0.2, stop=["###"])
    chat = store.create_chat("One", "sys", sampling, "/m.gguf", overflow_policy="stop")
    assert chat.sampling == sampling
    assert chat.overflow_policy == "stop"
    assert chat.created_at.tzinfo is not None

    assert store.update_chat(chat.id, system_prompt="new sys")
    again = store.get_chat(chat.id)
    assert again is not None
    assert again.system_prompt == "new sys"
    assert again.sampling == sampling and again.model_path == "/m.gguf"  # untouched

    assert store.update_chat(chat.id, model_path=None, sampling=Sampling(top_k=5))
    again = store.get_chat(chat.id)
    assert again is not None and again.model_path is None and again.sampling.top_k == 5
    assert store.rename_chat(chat.id, "Renamed")
    assert store.get_chat(chat.id).title == "Renamed"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        store.update_chat(chat.id, overflow_policy="explode")  # type: ignore[arg-type]
    assert not store.rename_chat(9999, "nobody")


def test_list_chats_most_recent_first(store: Store) -> None:
    first = store.create_chat("first")
    second = store.create_chat("second")
    assert [c.title for c in store.list_chats()] == ["second", "first"]
    store.add_message(first.id, "user", "bump")
    assert [c.title for c in store.list_chats()] == ["first", "second"]
    store.touch_chat(second.id)
    assert [c.id for c in store.list_chats()] == [second.id, first.id]


def test_delete_chat_cascades_to_messages_and_search(store: Store, db_path: Path) -> None:
    chat = store.create_chat()
    other = store.create_chat()
    store.add_message(chat.id, "user", "pelican facts")
    store.add_message(other.id, "user", "pelican survives")
    assert store.delete_chat(chat.id)
    assert store.get_chat(chat.id) is None
    assert store.count_messages(chat.id) == 0
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == (1,)
    conn.close()
    assert [h.chat_id for h in store.search_messages("pelican")] == [other.id]
    assert not store.delete_chat(chat.id)


# messages


def test_messages_keep_order_and_fields(store: Store) -> None:
    chat = store.create_chat()
    stats = GenerationStats(generated_tokens=7, tokens_per_second=12.5, stop_reason="length")
    store.add_message(chat.id, "system", "s")
    store.add_message(chat.id, "user", "u")
    added = store.add_message(chat.id, "assistant", "a", stats=stats)
    assert added.stats == stats
    listed = store.list_messages(chat.id)
    assert [(m.role, m.content) for m in listed] == [
        ("system", "s"),
        ("user", "u"),
        ("assistant", "a"),
    ]
    assert listed[2] == added
    assert listed[2].stats == stats and listed[0].stats is None
    assert store.get_message(added.id) == added
    assert store.count_messages(chat.id) == 3


def test_add_message_validates(store: Store) -> None:
    chat = store.create_chat()
    with pytest.raises(LookupError):
        store.add_message(9999, "user", "orphan")
    with pytest.raises(ValueError):
        store.add_message(chat.id, "robot", "hi")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.add_message(chat.id, "user", "hi", status="weird")  # type: ignore[arg-type]


def test_update_message_changes_only_given_fields(store: Store) -> None:
    chat = store.create_chat()
    msg = store.add_message(chat.id, "assistant", "draft", status="streaming")
    assert store.update_message(msg.id, content="final", stats=GenerationStats(n_ctx=512))
    got = store.get_message(msg.id)
    assert got is not None
    assert (got.content, got.status, got.stats.n_ctx) == ("final", "streaming", 512)  # type: ignore[union-attr]
    assert store.update_message(msg.id, status="failed", error="boom", stats=None)
    got = store.get_message(msg.id)
    assert got is not None and (got.status, got.error, got.stats) == ("failed", "boom", None)
    assert not store.update_message(9999, content="nobody")


def test_delete_messages_from_removes_that_and_later_only(store: Store) -> None:
    chat = store.create_chat()
    other = store.create_chat()
    ids = [store.add_message(chat.id, "user", f"m{i}").id for i in range(5)]
    kept_elsewhere = store.add_message(other.id, "user", "other chat")
    assert store.delete_messages_from(chat.id, ids[2]) == 3
    assert [m.content for m in store.list_messages(chat.id)] == ["m0", "m1"]
    assert store.get_message(kept_elsewhere.id) is not None
    # Ids are never reused, so a writer holding a deleted id cannot hit a new message.
    assert store.add_message(chat.id, "user", "again").id > kept_elsewhere.id


def test_list_messages_of_ten_thousand_rows(store: Store, db_path: Path) -> None:
    chat = store.create_chat()
    stats = GenerationStats(generated_tokens=3)
    # Bulk-load the rest directly: 10,000 separate add_message transactions would slow the suite.
    first = store.add_message(chat.id, "user", "row 0").id
    rows = [
        (
            first + i,
            first + i - 1,  # one branch: each message follows the one before
            chat.id,
            "assistant" if i % 2 else "user",
            f"row {i}",
            "complete",
            json.dumps(stats.to_dict()),
            "2025-01-02 03:04:05.000000",
        )
        for i in range(1, 10_000)
    ]
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO messages (id, parent_id, chat_id, role, content, status, stats, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("UPDATE chats SET leaf_id = ? WHERE id = ?", (first + 9_999, chat.id))
    conn.close()
    started = time.perf_counter()
    messages = store.list_messages(chat.id)
    elapsed = time.perf_counter() - started
    assert len(messages) == 10_000
    assert [m.content for m in messages[:3]] == ["row 0", "row 1", "row 2"]
    assert messages[-1].content == "row 9999" and messages[-1].stats == stats
    assert messages[-1].created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    # The branch walk must not make opening a long chat slow: ~60 ms here when quiet; the bound
    # catches a walk per message (seconds), not the noise of a shared machine.
    assert elapsed < 2.0


def test_mark_interrupted_turns_streaming_into_partial(db_path: Path) -> None:
    with Store.open(db_path) as crashed:  # its writer is gone once it is closed
        chat = crashed.create_chat()
        done = crashed.add_message(chat.id, "assistant", "done")
        cut = crashed.add_message(chat.id, "assistant", "half a rep", status="streaming")
    store = Store.open(db_path)
    assert store.mark_interrupted() == 1
    assert store.get_message(cut.id).status == "partial"  # type: ignore[union-attr]
    assert store.get_message(cut.id).content == "half a rep"  # type: ignore[union-attr]
    assert store.get_message(done.id).status == "complete"  # type: ignore[union-attr]
    assert store.mark_interrupted() == 0
    store.close()


# full-text search


def test_model_file_upsert_and_info_round_trip(store: Store) -> None:
    info = _info()
    first = store.add_model_file(info, source="download")
    assert first.info == info
    assert first.source == "download"
    assert store.get_model_file_by_path(info.path) == first

    updated = _info(name="Tiny v2", layer_tensor_bytes=[1, 2], sliding_window=512)
    second = store.add_model_file(updated, source="indexed")
    assert second.id == first.id and second.added_at == first.added_at
    assert second.info == updated and second.source == "indexed"
    assert len(store.list_model_files()) == 1

    record_info = second.info
    record_info.layer_tensor_bytes.append(7)  # a copy: the record stays as stored
    assert second.info.layer_tensor_bytes == [1, 2]

    store.add_model_file(_info(path="/models/other.gguf"))
    assert [m.path for m in store.list_model_files()] == [
        "/models/a/b/tiny.gguf",
        "/models/other.gguf",
    ]
    assert store.remove_model_file(first.id)
    assert store.get_model_file_by_path(info.path) is None
    with pytest.raises(ValueError):
        store.add_model_file(_info(), source="stolen")  # type: ignore[arg-type]


def test_presets_upsert_and_builtin_cannot_be_deleted(store: Store) -> None:
    store.upsert_preset("Helpful", "You are helpful.", builtin=True)
    store.upsert_preset("Mine", "Be terse.", Sampling(temperature=0.1))
    store.upsert_preset("Mine", "Be very terse.", Sampling(temperature=0.3))
    presets = {p.name: p for p in store.list_presets()}
    assert presets["Mine"].system_prompt == "Be very terse."
    assert presets["Mine"].sampling == Sampling(temperature=0.3)
    assert presets["Helpful"].builtin and presets["Helpful"].sampling is None
    with pytest.raises(ValueError):
        store.delete_preset("Helpful")
    assert store.delete_preset("Mine")
    assert not store.delete_preset("Mine")
    assert [p.name for p in store.list_presets()] == ["Helpful"]


def test_settings_round_trip(store: Store) -> None:
    assert store.get_setting("missing", default=42) == 42
    value = {"n_ctx": 4096, "recent": ["a", "b"], "gpu": None, "ratio": 0.5, "on": True}
    store.set_setting("load", value)
    assert store.get_setting("load") == value
    store.set_setting("load", [1, 2])
    assert store.get_setting("load") == [1, 2]
    store.set_setting("nothing", None)
    assert store.get_setting("nothing", default="x") is None
    with pytest.raises(TypeError):
        store.set_setting("bad", object())
