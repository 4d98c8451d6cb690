"""Messages as a tree on a real SQLite file: versions, forks, the branch on screen, the 0005
migration of a database with real rows, and live writers in another process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.models.migrations import migrate_to
from app.models.store import Store


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hearth.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as store:
        yield store


def _contents(store: Store, chat_id: int) -> list[str]:
    return [m.content for m in store.list_messages(chat_id)]


def _fts_ok(db_path: Path) -> bool:
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    conn.close()
    return True


def test_regenerate_keeps_the_old_reply_as_a_version_that_can_be_shown_again(
    store: Store, db_path: Path
) -> None:
    chat = store.create_chat()
    question = store.add_message(chat.id, "user", "Name a colour")
    first = store.add_message(chat.id, "assistant", "Red")
    second = store.add_message(chat.id, "assistant", "Blue", parent_id=question.id)
    assert second.parent_id == question.id
    assert _contents(store, chat.id) == ["Name a colour", "Blue"]
    assert store.message_versions(chat.id) == {first.id: (first.id, second.id),
                                               second.id: (first.id, second.id)}
    assert store.count_messages(chat.id) == 3  # nothing was deleted

    assert [m.content for m in store.show_version(chat.id, first.id)] == ["Red"]
    assert _contents(store, chat.id) == ["Name a colour", "Red"]
    with Store.open(db_path) as again:  # the branch on screen is stored, not just shown
        assert _contents(again, chat.id) == ["Name a colour", "Red"]
    # A new turn continues the branch on screen.
    store.add_message(chat.id, "user", "Another")
    assert _contents(store, chat.id) == ["Name a colour", "Red", "Another"]


def test_edit_and_resend_forks_and_the_old_branch_stays_reachable(store: Store) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "Hi")
    hello = store.add_message(chat.id, "assistant", "Hello")
    old_question = store.add_message(chat.id, "user", "What is 2+2?")
    store.add_message(chat.id, "assistant", "4")
    edited = store.add_message(chat.id, "user", "What is 3+3?", parent_id=hello.id)
    store.add_message(chat.id, "assistant", "6")
    assert _contents(store, chat.id) == ["Hi", "Hello", "What is 3+3?", "6"]

    tail = store.show_version(chat.id, old_question.id)
    assert [m.content for m in tail] == ["What is 2+2?", "4"]  # the old branch, whole
    assert _contents(store, chat.id) == ["Hi", "Hello", "What is 2+2?", "4"]
    assert [m.content for m in store.show_version(chat.id, edited.id)] == ["What is 3+3?", "6"]
    assert store.show_version(chat.id + 1, edited.id) == []  # not that chat's message


def test_deleting_a_version_removes_it_and_what_follows_it_only(
    store: Store, db_path: Path
) -> None:
    chat = store.create_chat()
    question = store.add_message(chat.id, "user", "Pick an animal")
    cat = store.add_message(chat.id, "assistant", "cat")
    store.add_message(chat.id, "user", "why the cat")
    dog = store.add_message(chat.id, "assistant", "dog", parent_id=question.id)
    assert store.search_messages("why") != []

    store.show_version(chat.id, cat.id)
    # The shown version goes, with the turn after it; the other one takes its place.
    assert store.delete_version(chat.id, cat.id) == dog.id
    assert _contents(store, chat.id) == ["Pick an animal", "dog"]
    assert store.message_versions(chat.id) == {}
    assert store.search_messages("why") == []
    with pytest.raises(ValueError):
        store.delete_version(chat.id, dog.id)  # the last version stays
    with pytest.raises(LookupError):
        store.delete_version(chat.id, cat.id)
    assert store.integrity_ok() and _fts_ok(db_path)


def test_deleting_a_long_branch_and_its_chat(store: Store, db_path: Path) -> None:
    chat = store.create_chat()
    first = store.add_message(chat.id, "user", "m0")
    store.add_message(chat.id, "user", "other version", parent_id=None)
    with sqlite3.connect(db_path) as conn:  # deeper than SQLite's trigger recursion limit
        conn.executemany(
            "INSERT INTO messages (id, parent_id, chat_id, role, content, status, created_at) "
            "VALUES (?, ?, ?, 'user', 'm', 'complete', '2026-01-01 00:00:00')",
            [(first.id + 1 + i, first.id + i if i > 1 else first.id, chat.id)
             for i in range(1, 1500)])
    conn.close()
    store.show_version(chat.id, first.id)
    assert len(store.list_messages(chat.id)) == 1500
    assert store.delete_version(chat.id, first.id) == first.id + 1
    assert _contents(store, chat.id) == ["other version"]
    assert store.delete_chat(chat.id)
    assert store.count_messages(chat.id) == 0


def test_migration_keeps_a_0004_database_as_one_branch_per_chat(db_path: Path) -> None:
    migrate_to(db_path, "0004_quantize")
    with sqlite3.connect(db_path) as conn:
        for chat_id in (1, 2):
            conn.execute(
                "INSERT INTO chats (id, title, system_prompt, sampling, overflow_policy, "
                "created_at, updated_at) VALUES (?, ?, '', '{}', 'truncate_oldest', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')", (chat_id, f"chat {chat_id}"))
        rows = [(1, "user", "first question about lemurs", "complete"),
                (2, "user", "other chat", "complete"),
                (1, "assistant", "lemurs live on Madagascar", "complete"),
                (1, "user", "and aye-ayes?", "complete"),
                (1, "assistant", "a cut-off reply about capybaras", "streaming")]
        for chat_id, role, content, status in rows:
            conn.execute(
                "INSERT INTO messages (chat_id, role, content, status, created_at) "
                "VALUES (?, ?, ?, ?, '2026-01-01 00:00:00')", (chat_id, role, content, status))
    conn.close()

    with Store.open(db_path) as store:
        messages = store.list_messages(1)
        assert [m.content for m in messages] == [
            "first question about lemurs", "lemurs live on Madagascar", "and aye-ayes?",
            "a cut-off reply about capybaras"]
        assert [m.parent_id for m in messages] == [None, 1, 3, 4]
        assert _contents(store, 2) == ["other chat"]
        assert store.message_versions(1) == {}
        assert [h.message_id for h in store.search_messages("lemurs Madagascar")] == [3]
        # The cut-off reply leaves the index until it is marked, then is indexed once.
        assert store.search_messages("capybaras") == []
        assert store.mark_interrupted() == 1
        assert [h.message_id for h in store.search_messages("capybaras")] == [5]
        assert store.integrity_ok() and _fts_ok(db_path)
        # Regenerating the old reply keeps it as a version.
        regenerated = store.add_message(1, "assistant", "new reply", parent_id=4)
        assert store.message_versions(1)[regenerated.id] == (5, regenerated.id)


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from app.models.reply_writer import ReplyWriter
    from app.models.store import Store

    store = Store.open(Path(sys.argv[1]))
    reply = store.add_message(int(sys.argv[2]), "assistant", "", status="streaming")
    writer = ReplyWriter(store, reply.id, interval=0.01)
    writer.append("still typing")
    writer.flush()
    writer.wait(5)
    print(reply.id, flush=True)
    sys.stdin.readline()  # streams until told to finish (or is killed)
    writer.append(" and done")
    writer.finish()
    writer.wait(5)
    store.close()
""")


def _writer_process(db_path: Path, chat_id: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db_path), str(chat_id)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip(), "the writer process did not start"
    return proc, int(line)


def test_start_up_marks_only_replies_whose_writer_is_gone(db_path: Path) -> None:
    with Store.open(db_path) as store:
        chat = store.create_chat()
    live, live_id = _writer_process(db_path, chat.id)
    dead, dead_id = _writer_process(db_path, chat.id)
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait(10)
        with Store.open(db_path) as store:  # what a second window does at start
            assert store.mark_interrupted() == 1
            assert store.get_message(dead_id).status == "partial"  # type: ignore[union-attr]
            still = store.get_message(live_id)
            assert still is not None and (still.status, still.content) == (
                "streaming", "still typing")
            live.communicate("go on\n", timeout=30)
            assert live.returncode == 0
            done = store.get_message(live_id)
            assert done is not None and (done.status, done.content) == (
                "complete", "still typing and done")
            assert store.mark_interrupted() == 0
    finally:
        for proc in (live, dead):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
