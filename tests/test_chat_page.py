"""The Chat page against a real engine bridge, the real starter model and a real Store."""

from __future__ import annotations

import json
import re

from chat_page_support import (
    COUNTING,
    click_version_arrow,
    last_index,
    load,
    seed_chat,
    send,
    shown_text,
    use_sampling,
    version_shown,
    wait_idle,
)
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from app.models.store import Store

# -- streaming, stop, relaunch ---------------------------------------------------------------------


def test_reply_streams_into_the_last_row_then_shows_stats(qtbot, bridge, make_page, starter_model):
    page = make_page()
    load(qtbot, bridge, page, starter_model)
    page.new_chat()
    use_sampling(page, max_tokens=64)
    changes, resets, seen_while_streaming = [], [], []

    def on_changed(top, bottom):
        changes.append((top.row(), bottom.row(), page.messages.rowCount()))

    page.messages.dataChanged.connect(on_changed)
    page.messages.modelReset.connect(lambda: resets.append(True))
    send(qtbot, page, COUNTING)
    assert page.composer.button.text() == "Stop"
    assert page.composer.text() == ""

    def streaming_text_shown() -> bool:
        record = page.messages.last_record()
        if record.status == "streaming" and len(record.content) > 4:
            seen_while_streaming.append(shown_text(page, page.messages.rowCount() - 1))
        return len(set(seen_while_streaming)) >= 2

    qtbot.waitUntil(streaming_text_shown, timeout=30_000)
    wait_idle(qtbot, page)

    reply = page.messages.last_record()
    assert reply.role == "assistant" and reply.status == "complete"
    assert shown_text(page, 1).startswith(seen_while_streaming[0])  # grew in place
    # Every streaming update touched only the last row, and the model never reset.
    assert changes and all(top == bottom == rows - 1 for top, bottom, rows in changes)
    assert not resets
    stored = page._store.list_messages(page.current_chat_id())
    assert [(m.role, m.content, m.status) for m in stored] == [
        ("user", COUNTING, "complete"), ("assistant", reply.content, "complete")
    ]
    assert page.composer.button.text() == "Send"
    status = page.status_line
    assert status.speed_label.text().endswith("tok/s") and float(status.speed_label.text()[:-6]) > 0
    assert status.ttft_label.text().startswith("TTFT ")
    stats = stored[1].stats
    assert status.tokens_label.text() == f"{stats.generated_tokens} tokens"
    assert status.context_bar.maximum() == bridge.n_ctx
    assert status.context_bar.value() == stats.context_used > 0
    assert "tok/s" in shown_text(page, 1)  # per-message stats under the reply
    assert page._store.get_chat(page.current_chat_id()).model_path == str(starter_model)


def test_stop_keeps_the_partial_reply_in_view_and_store(qtbot, bridge, make_page, starter_model):
    page = make_page()
    load(qtbot, bridge, page, starter_model)
    page.new_chat()
    use_sampling(page, max_tokens=400)
    send(qtbot, page, COUNTING)
    qtbot.waitUntil(lambda: len(page.messages.last_record().content) >= 10, timeout=30_000)
    assert page.controller.busy
    qtbot.mouseClick(page.composer.button, Qt.MouseButton.LeftButton)  # the Stop button
    wait_idle(qtbot, page)

    reply = page.messages.last_record()
    assert reply.status == "partial" and len(reply.content) >= 10
    stored = page._store.get_message(reply.id)
    assert stored.status == "partial" and stored.content == reply.content
    assert stored.stats.stop_reason == "cancelled" and stored.stats.generated_tokens < 400
    assert page.view.delegate.header_text(last_index(page)) == "Assistant · partial"
    assert "partial" in page.status_line.notice_label.text()


def test_relaunch_shows_the_saved_chat(qtbot, bridge, make_page, starter_model, hearth_home):
    page = make_page()
    load(qtbot, bridge, page, starter_model)
    page.new_chat()
    use_sampling(page, max_tokens=24)
    send(qtbot, page, "Hello there")
    wait_idle(qtbot, page)
    chat_id = page.current_chat_id()
    expected = [m.content for m in page.messages.records()]
    page.close()

    with Store.open(hearth_home / "hearth.db") as store:
        again = make_page(store)
        assert again.current_chat_id() == chat_id
        assert again.chat_list.chats.item(0).text() == "Hello there"
        assert [again.messages.record(r).content for r in range(again.messages.rowCount())] == (
            expected
        )
        assert shown_text(again, 0) == "Hello there"
        assert again.settings_panel.max_tokens.value() == 24


# -- edit, regenerate, empty, failures -------------------------------------------------------------


def test_edit_and_resend_forks_and_the_old_branch_stays_reachable(qtbot, bridge, make_page,
                                                                  starter_model):
    page = make_page()
    load(qtbot, bridge, page, starter_model)
    page.new_chat()
    use_sampling(page, max_tokens=16)
    send(qtbot, page, "Hello")
    wait_idle(qtbot, page)
    send(qtbot, page, COUNTING)
    wait_idle(qtbot, page)
    old_ids = [m.id for m in page.messages.records()]
    assert len(old_ids) == 4

    page.view.setCurrentIndex(page.messages.index(0, 0))
    assert page.view.edit_action.isEnabled()
    page.view.edit_action.trigger()
    assert page.composer.editing_id == old_ids[0]
    assert page.composer.text() == "Hello" and page.composer.edit_banner.isVisible()
    send(qtbot, page, "Count from 1 to 10: 1, 2,")
    wait_idle(qtbot, page)

    stored = page._store.list_messages(page.current_chat_id())
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "complete")]
    assert stored[0].content == "Count from 1 to 10: 1, 2,"
    assert not {m.id for m in stored} & set(old_ids)
    assert [m.id for m in page.messages.records()] == [m.id for m in stored]
    assert page.composer.editing_id is None and not page.composer.edit_banner.isVisible()

    # The old branch is still there: the edited message shows "2/2", and ‹ brings it all back.
    assert version_shown(page, 0) == (2, 2)
    click_version_arrow(qtbot, page, 0, -1)
    assert [m.id for m in page.messages.records()] == old_ids
    assert version_shown(page, 0) == (1, 2)
    assert [m.id for m in page._store.list_messages(page.current_chat_id())] == old_ids


def test_regenerate_keeps_the_earlier_reply_as_a_version(qtbot, bridge, make_page, starter_model,
                                                          tmp_path):
    page = make_page()
    load(qtbot, bridge, page, starter_model)
    page.new_chat()
    use_sampling(page, max_tokens=16, temperature=1.0)
    send(qtbot, page, "Tell me about the sea.")
    wait_idle(qtbot, page)
    first = page.messages.last_record()
    assert page.view.regenerate_action.isEnabled()

    page.view.regenerate_action.trigger()
    assert page.controller.busy and not page.view.regenerate_action.isEnabled()
    wait_idle(qtbot, page)

    stored = page._store.list_messages(page.current_chat_id())
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].id != first.id and stored[1].status == "complete"
    assert page.messages.last_record().id == stored[1].id
    assert page._store.get_message(first.id).content == first.content  # kept
    assert version_shown(page, 1) == (2, 2)

    click_version_arrow(qtbot, page, 1, -1)
    assert page.messages.last_record().id == first.id and version_shown(page, 1) == (1, 2)
    # The reply is rendered as Markdown (a random one may start with "- " or "1."): its words.
    # The stats line follows it.
    words = re.compile(r"[^\W\d_]{2,}")
    expected = words.findall(first.content)[:3]
    assert words.findall(shown_text(page, 1))[:len(expected)] == expected
    exported = page.export_to(tmp_path / "chat.json", "json").read_text(encoding="utf-8")
    assert [m["content"] for m in json.loads(exported)["messages"]][1] == first.content

    # Deleting a version: from the message's menu; the other version takes its place.
    view = page.view
    menu = view.context_menu_at(view.visualRect(page.messages.index(1, 0)).center())
    assert "Delete this version" in [a.text() for a in menu.actions()]
    view.delete_version_action.trigger()
    assert page.messages.last_record().id == stored[1].id and version_shown(page, 1) is None
    assert page._store.get_message(first.id) is None
    assert not view.delete_version_action.isEnabled()  # the last version stays


def test_empty_message_is_not_sent(qtbot, bridge, make_page):
    page = make_page()
    jobs = []
    bridge.promptInfo.connect(lambda job, *_: jobs.append(job))
    bridge.failed.connect(lambda job, *_: jobs.append(job))
    send(qtbot, page, "   \n\t ")
    qtbot.mouseClick(page.composer.button, Qt.MouseButton.LeftButton)
    qtbot.wait(200)
    assert not jobs and not page.controller.busy
    assert page._store.list_chats() == []  # not even a chat was started
    assert page.messages.rowCount() == 0
    assert page.composer.text() == "   \n\t "  # left for the user to fix, not swallowed


def test_no_model_loaded_marks_the_reply_failed_and_keeps_history(qtbot, make_page, hearth_store):
    chat_id = seed_chat(hearth_store, "Earlier", ("user", "What is 2+2?"), ("assistant", "4."))
    page = make_page()
    assert page.current_chat_id() == chat_id
    page.composer.input.setFocus()
    qtbot.keyClicks(page.composer.input, "line one")
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(page.composer.input, "line two")
    assert hearth_store.count_messages(chat_id) == 2  # Shift+Enter only broke the line
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)
    wait_idle(qtbot, page)

    stored = hearth_store.list_messages(chat_id)
    assert [(m.role, m.content, m.status) for m in stored[:3]] == [
        ("user", "What is 2+2?", "complete"),
        ("assistant", "4.", "complete"),
        ("user", "line one\nline two", "complete"),
    ]
    assert stored[3].status == "failed" and "No model is loaded" in stored[3].error
    assert page.messages.last_record().status == "failed"
    assert page.view.delegate.header_text(last_index(page)) == "Assistant · failed"
    assert "Failed: No model is loaded" in shown_text(page, 3)
    assert "No model is loaded" in page.status_line.notice_label.text()
    assert shown_text(page, 0) == "What is 2+2?"


def test_context_overflow_with_policy_stop_says_so(qtbot, bridge, make_page, starter_model):
    page = make_page()
    load(qtbot, bridge, page, starter_model, n_ctx=128)
    chat_id = page.new_chat()
    use_sampling(page, max_tokens=24)
    combo = page.settings_panel.overflow_combo
    combo.setCurrentIndex(combo.findText("Stop and tell me"))
    assert page._store.get_chat(chat_id).overflow_policy == "stop"
    send(qtbot, page, "Please summarise this: " + "the quick brown fox jumps " * 60)
    wait_idle(qtbot, page)

    reply = page.messages.last_record()
    holds = f"the context holds {bridge.n_ctx}"  # llama.cpp rounds tiny contexts up
    assert reply.status == "failed" and holds in reply.error
    assert holds in page.status_line.notice_label.text()
    assert "Failed:" in shown_text(page, 1)
    assert page._store.list_messages(chat_id)[0].content.startswith("Please summarise")


def test_context_overflow_truncate_drops_oldest_turns_with_a_notice(qtbot, bridge, make_page,
                                                                     starter_model, hearth_store):
    long = "The quick brown fox jumps over the lazy dog near the river bank. " * 6
    chat_id = seed_chat(
        hearth_store, "Long", ("user", long), ("assistant", long), ("user", long),
        ("assistant", long),
    )
    page = make_page()
    load(qtbot, bridge, page, starter_model, n_ctx=128)
    assert page.current_chat_id() == chat_id
    use_sampling(page, max_tokens=16)
    assert page.settings_panel.overflow_policy() == "truncate_oldest"
    send(qtbot, page, "Hi")
    wait_idle(qtbot, page)

    assert page.messages.last_record().status == "complete"
    notice = page.status_line.notice_label.text()
    assert notice.startswith("Dropped the ") and notice.endswith("to fit the context")
    assert page.status_line.context_bar.maximum() == bridge.n_ctx <= 256
    assert 0 < page.status_line.context_bar.value() <= bridge.n_ctx
    assert hearth_store.count_messages(chat_id) == 6  # nothing dropped from the saved chat


# -- chat list: search, delete, rename, new --------------------------------------------------------


def test_search_finds_a_message_and_opens_its_chat(qtbot, make_page, hearth_store):
    groceries = seed_chat(hearth_store, "Groceries", ("user", "buy apples and a zucchini"),
                          ("assistant", "Noted."))
    seed_chat(hearth_store, "Travel", ("user", "book a flight to Lisbon"))
    page = make_page()
    assert page.current_chat_id() != groceries
    lst = page.chat_list
    qtbot.keyClicks(lst.search_box, "zucch")
    qtbot.waitUntil(lambda: lst.hits.isVisible() and lst.hits.count() > 0)
    item = lst.hits.item(0)
    assert "Groceries" in item.text() and "«zucchini»" in item.text()
    assert not lst.chats.isVisible()

    opened = []
    lst.hitActivated.connect(lambda chat_id, message_id: opened.append((chat_id, message_id)))
    qtbot.mouseClick(lst.hits.viewport(), Qt.MouseButton.LeftButton,
                     pos=lst.hits.visualItemRect(item).center())
    assert len(opened) == 1  # one click opens the hit once
    assert page.current_chat_id() == groceries
    assert page.view.selected_record().content == "buy apples and a zucchini"
    assert page.title_label.text() == "Groceries"

    lst.hits.setCurrentItem(item)
    qtbot.keyClick(lst.hits, Qt.Key.Key_Return)  # and so does Enter
    assert len(opened) == 2
    at = lst.hits.visualItemRect(item).center()
    qtbot.mousePress(lst.hits.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseRelease(lst.hits.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseDClick(lst.hits.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert len(opened) == 3, opened  # a double-click opens it once, too

    lst.search_box.clear()
    qtbot.waitUntil(lambda: lst.chats.isVisible() and not lst.hits.isVisible())


def test_delete_chat_asks_first_then_removes_it(qtbot, make_page, hearth_store, monkeypatch):
    keep = seed_chat(hearth_store, "Keep me", ("user", "hi"))
    doomed = seed_chat(hearth_store, "Delete me", ("user", "bye"))
    page = make_page()
    assert page.current_chat_id() == doomed
    questions = []
    answer = [QMessageBox.StandardButton.No]

    def ask(_parent, title, text, *_args):
        questions.append(text)
        return answer[0]

    monkeypatch.setattr(QMessageBox, "question", ask)
    qtbot.mouseClick(page.chat_list.delete_button, Qt.MouseButton.LeftButton)
    assert questions and "Delete me" in questions[0]
    assert hearth_store.get_chat(doomed) is not None and page.current_chat_id() == doomed

    answer[0] = QMessageBox.StandardButton.Yes
    qtbot.mouseClick(page.chat_list.delete_button, Qt.MouseButton.LeftButton)
    assert hearth_store.get_chat(doomed) is None
    assert page.chat_list.chat_ids() == [keep]
    assert page.current_chat_id() == keep and shown_text(page, 0) == "hi"


def test_rename_and_new_chat(qtbot, make_page, hearth_store):
    chat_id = seed_chat(hearth_store, "Old name", ("user", "hi"))
    page = make_page()
    page.chat_list.item_for(chat_id).setText("Better name")  # what inline editing commits
    assert hearth_store.get_chat(chat_id).title == "Better name"
    assert page.title_label.text() == "Better name"
    page.chat_list.item_for(chat_id).setText("   ")
    assert hearth_store.get_chat(chat_id).title == "Better name"
    assert page.chat_list.item_for(chat_id).text() == "Better name"

    with qtbot.waitSignal(page.currentChatChanged) as opened:
        qtbot.mouseClick(page.chat_list.new_button, Qt.MouseButton.LeftButton)
    new_id = opened.args[0]
    assert new_id != chat_id and page.current_chat_id() == new_id
    assert page.chat_list.chat_ids()[0] == new_id and page.messages.rowCount() == 0


def test_first_message_names_the_chat(qtbot, make_page, hearth_store):
    page = make_page()
    send(qtbot, page, "Explain how quantization trades quality for size in detail")
    wait_idle(qtbot, page)  # fails (no model) but the chat and its title stay
    chat = hearth_store.get_chat(page.current_chat_id())
    assert chat.title.startswith("Explain how quantization") and chat.title.endswith("…")
    assert len(chat.title) <= 41
    assert page.chat_list.chats.item(0).text() == chat.title
