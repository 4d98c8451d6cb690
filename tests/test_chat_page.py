"""The Chat page against a real engine bridge, the real starter model and a real Store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

from app.engine.gguf.info import read_model_info
from app.engine.inference.prompt_format import PLAIN_FORMAT_LABEL
from app.engine.types import GenerationStats, LoadSettings
from app.models.store import Store
from app.ui.bridge import EngineBridge
from app.ui.chat.message_model import FETCH_BATCH, WINDOW
from app.ui.chat.message_view import CONTEXT_ROWS
from app.ui.chat.page import ChatPage

COUNTING = "Count from 1 to 100: 1, 2, 3,"  # the starter model keeps counting at temperature 0
STATS = GenerationStats(generated_tokens=5, tokens_per_second=50.0, time_to_first_token=0.1)


@pytest.fixture
def bridge(qapp):
    bridge = EngineBridge()
    yield bridge
    bridge.shutdown()


@pytest.fixture
def make_page(qtbot, hearth_store, bridge):
    def make(store: Store = hearth_store) -> ChatPage:
        page = ChatPage(store, bridge)
        qtbot.addWidget(page)
        page.resize(1100, 700)
        page.show()
        qtbot.waitExposed(page)
        return page

    return make


def load(qtbot, bridge: EngineBridge, page: ChatPage, path: Path, **settings) -> None:
    with qtbot.waitSignal(bridge.loaded, timeout=60_000):
        page.model_picker.load_model(str(path), LoadSettings(**settings) if settings else None)


def use_sampling(page: ChatPage, max_tokens: int = 32, temperature: float = 0.0) -> None:
    panel = page.settings_panel
    panel.temperature.setValue(temperature)
    panel.max_tokens.setValue(max_tokens)
    panel.repeat_penalty.setValue(1.0)


def send(qtbot, page: ChatPage, text: str) -> None:
    page.composer.input.setPlainText(text)
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)


def wait_idle(qtbot, page: ChatPage) -> None:
    """Until the reply has ended and its last text is saved (the writer saves off this thread)."""
    qtbot.waitUntil(lambda: not page.controller.busy and page.controller.saved(), timeout=60_000)


def click_version_arrow(qtbot, page: ChatPage, row: int, step: int) -> None:
    index = page.messages.index(row, 0)
    switch = page.view.delegate.version_switch_at(page.view.visualRect(index), index)
    assert switch is not None, "that message shows no versions"
    arrow = switch.previous if step < 0 else switch.next
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=arrow.center())


def version_shown(page: ChatPage, row: int) -> tuple[int, int] | None:
    index = page.messages.index(row, 0)
    switch = page.view.delegate.version_switch_at(page.view.visualRect(index), index)
    return (switch.number, switch.count) if switch is not None else None


def last_index(page: ChatPage):
    return page.messages.index(page.messages.rowCount() - 1, 0)


def shown_text(page: ChatPage, row: int) -> str:
    return page.view.delegate.document_for(page.messages.index(row, 0)).toPlainText()


def seed_chat(store: Store, title: str, *pairs: tuple[str, str]) -> int:
    chat = store.create_chat(title)
    for role, content in pairs:
        store.add_message(chat.id, role, content, stats=STATS if role == "assistant" else None)
    return chat.id


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
    assert shown_text(page, 1).startswith(first.content.strip()[:10])
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


# -- the transcript --------------------------------------------------------------------------------


def test_ten_thousand_messages_open_fast_with_a_window_of_rows(qtbot, make_page, hearth_store):
    big = hearth_store.create_chat("Big")
    for i in range(10_000):
        hearth_store.add_message(big.id, "assistant" if i % 2 else "user", f"row {i} **bold**")
    small = seed_chat(hearth_store, "Small", ("user", "hi"))
    page = make_page()
    assert page.current_chat_id() == small

    page.open_chat(big.id)  # bench/ui_stall.py measures how fast this is
    assert page.messages.total_count == 10_000 and page.messages.rowCount() == WINDOW
    assert page.messages.last_record().content == "row 9999 **bold**"
    bar = page.view.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()  # newest in view

    top_before = page.messages.record(0).id
    bar.setValue(0)  # the user scrolls to the top
    assert page.messages.rowCount() == WINDOW + FETCH_BATCH
    assert page.messages.record(0).content == f"row {10_000 - WINDOW - FETCH_BATCH} **bold**"
    qtbot.waitUntil(lambda: page.view.indexAt(QPoint(20, 20)).isValid())
    assert page.messages.record(page.view.indexAt(QPoint(20, 20)).row()).id == top_before

    target = page.messages.records()[9_700]
    assert page.view.select_message(target.id)  # a search hit further back pages rows in
    assert page.view.selected_record().id == target.id
    # Only as many pages as needed to reach it.
    assert 10_000 - 9_700 <= page.messages.rowCount() < 10_000 - 9_700 + FETCH_BATCH


def test_markdown_code_and_raw_html(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Code", ("user", "Show <b>code</b>"),
              ("assistant", "Here is **bold** text:\n\n```python\nprint('hi')\n```"))
    page = make_page()
    user, reply = page.view.delegate.document_for(page.messages.index(0, 0)), \
        page.view.delegate.document_for(page.messages.index(1, 0))
    assert user.toPlainText() == "Show <b>code</b>"  # raw HTML shown as text
    assert "print('hi')" in reply.toPlainText() and "**" not in reply.toPlainText()
    html = reply.toHtml()
    assert "font-weight:700" in html  # **bold**
    assert "color:#008000" in html  # Pygments colours the `print` builtin


def test_thinking_block_is_collapsed_and_toggles_on_click(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Think", ("user", "2+2?"),
              ("assistant", "<think>secret plan: add them</think>The answer is 4."))
    page = make_page()
    view, delegate = page.view, page.view.delegate
    index = page.messages.index(1, 0)
    assert shown_text(page, 1).startswith("The answer is 4.")
    assert "secret plan" not in shown_text(page, 1)
    assert delegate.thinking_for(index) is None
    collapsed_height = view.visualRect(index).height()

    header = delegate.thinking_header_rect(view.visualRect(index), index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=header.center())
    assert "secret plan: add them" in delegate.thinking_for(index).toPlainText()
    qtbot.waitUntil(lambda: view.visualRect(index).height() > collapsed_height)

    header = delegate.thinking_header_rect(view.visualRect(index), index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=header.center())
    assert delegate.thinking_for(index) is None
    qtbot.waitUntil(lambda: view.visualRect(index).height() == collapsed_height)


def test_copy_and_context_menu_act_on_a_message(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Copy", ("user", "Copy me"), ("assistant", "Reply text"))
    page = make_page()
    view = page.view
    assert not view.copy_action.isEnabled()  # nothing selected yet
    menu = view.context_menu_at(view.visualRect(page.messages.index(0, 0)).center())
    assert [a.text() for a in menu.actions()] == ["Copy", "Edit", "Regenerate"]
    assert view.selected_record().content == "Copy me"
    assert view.edit_action.isEnabled()
    view.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == "Copy me"

    view.context_menu_at(view.visualRect(page.messages.index(1, 0)).center())
    assert not view.edit_action.isEnabled()  # only your own messages can be edited
    view.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == "Reply text"


def test_follows_the_reply_only_when_already_at_the_bottom(qtbot, bridge, make_page,
                                                           starter_model, hearth_store):
    filler = "A long line of earlier conversation that wraps in the view. " * 6
    pairs = [("user" if i % 2 == 0 else "assistant", filler) for i in range(30)]
    seed_chat(hearth_store, "Scroll", *pairs)
    page = make_page()
    load(qtbot, bridge, page, starter_model)
    use_sampling(page, max_tokens=64)
    bar = page.view.verticalScrollBar()

    send(qtbot, page, COUNTING)
    wait_idle(qtbot, page)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0)

    send(qtbot, page, COUNTING)
    qtbot.waitUntil(lambda: len(page.messages.last_record().content) > 0)
    bar.setValue(0)  # the user scrolls up to read while the reply streams
    wait_idle(qtbot, page)
    qtbot.wait(100)
    assert bar.value() == 0 and bar.maximum() > 0


# -- settings, model picker, export ----------------------------------------------------------------


def test_settings_panel_presets_and_sampling_persist(qtbot, make_page, hearth_store):
    hearth_store.upsert_preset("Plain assistant", "You are a helpful assistant.", builtin=True)
    hearth_store.upsert_preset("Chain of thought", "Think step by step, then answer.",
                               builtin=True)
    chat_id = seed_chat(hearth_store, "Settings")
    page = make_page()
    panel = page.settings_panel
    names = [panel.preset_combo.itemText(i) for i in range(panel.preset_combo.count())]
    assert {"Plain assistant", "Chain of thought"} <= set(names)

    panel.preset_combo.setCurrentIndex(panel.preset_combo.findText("Chain of thought"))
    assert panel.system_prompt.toPlainText() == "Think step by step, then answer."
    assert hearth_store.get_chat(chat_id).system_prompt == "Think step by step, then answer."

    panel.temperature.setValue(0.4)
    panel.top_k.setValue(12)
    panel.seed.setValue(42)
    panel.overflow_combo.setCurrentIndex(panel.overflow_combo.findData("stop"))
    chat = hearth_store.get_chat(chat_id)
    assert (chat.sampling.temperature, chat.sampling.top_k, chat.sampling.seed) == (0.4, 12, 42)
    assert chat.overflow_policy == "stop"

    panel.system_prompt.moveCursor(panel.system_prompt.textCursor().MoveOperation.End)
    qtbot.keyClicks(panel.system_prompt, " Be brief.")
    assert panel.preset_combo.currentText() == "Custom"
    qtbot.waitUntil(lambda: hearth_store.get_chat(chat_id).system_prompt.endswith("Be brief."))


def test_model_picker_loads_fails_and_ejects(qtbot, bridge, make_page, starter_model,
                                             hearth_store, tmp_path):
    hearth_store.add_model_file(read_model_info(starter_model), source="starter")
    page = make_page()
    picker = page.model_picker
    assert picker.combo.count() == 1 and picker.loaded_label.text() == "No model loaded"
    progress = []
    picker.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(bridge.loaded, timeout=60_000):
        qtbot.mouseClick(picker.load_button, Qt.MouseButton.LeftButton)
    assert progress and max(progress) == 100 and not picker.progress.isVisible()
    assert bridge.n_ctx == 8192  # min(8192, the model's 32768)
    assert "Gemma" in picker.loaded_label.text() and "8192" in picker.loaded_label.text()
    assert picker.format_label.text() == PLAIN_FORMAT_LABEL
    assert page.status_line.context_bar.maximum() == 8192

    bad = tmp_path / "notes.gguf"
    bad.write_text("this is not a model")
    with qtbot.waitSignal(bridge.failed, timeout=60_000):
        picker.load_model(str(bad))
    assert picker.error_label.isVisible() and picker.error_label.text()
    assert "Gemma" in picker.loaded_label.text()  # the previous model stays
    assert bridge.loaded_path == str(starter_model)

    with qtbot.waitSignal(bridge.unloaded, timeout=60_000):
        qtbot.mouseClick(picker.eject_button, Qt.MouseButton.LeftButton)
    assert picker.loaded_label.text() == "No model loaded" and not picker.eject_button.isEnabled()


def test_export_writes_markdown_and_json(qtbot, make_page, hearth_store, tmp_path):
    chat_id = seed_chat(hearth_store, "Export me", ("user", "Question?"), ("assistant", "Answer."))
    hearth_store.update_chat(chat_id, system_prompt="Be kind.")
    page = make_page()
    assert page.export_markdown_button.isEnabled()
    md = page.export_to(tmp_path / "chat.md", "markdown").read_text(encoding="utf-8")
    assert md.startswith("# Export me") and "Be kind." in md
    assert "## You\n\nQuestion?" in md and "## Assistant\n\nAnswer." in md
    data = json.loads(page.export_to(tmp_path / "chat.json", "json").read_text(encoding="utf-8"))
    assert [m["content"] for m in data["messages"]] == ["Question?", "Answer."]
    assert data["system_prompt"] == "Be kind."
    assert data["messages"][1]["stats"]["generated_tokens"] == 5


def test_cancelling_an_edit_deletes_nothing_and_drafts_survive_switching(qtbot, make_page,
                                                                         hearth_store):
    first = seed_chat(hearth_store, "First", ("user", "original"), ("assistant", "reply"))
    second = seed_chat(hearth_store, "Second", ("user", "other"))
    page = make_page()
    page.open_chat(first)
    page.view.setCurrentIndex(page.messages.index(0, 0))
    page.view.edit_action.trigger()
    assert page.composer.text() == "original" and page.composer.edit_banner.isVisible()
    qtbot.mouseClick(page.composer.cancel_edit_button, Qt.MouseButton.LeftButton)
    assert page.composer.editing_id is None and page.composer.text() == ""
    assert hearth_store.count_messages(first) == 2

    page.composer.input.setPlainText("half-written thought")
    page.open_chat(second)
    assert page.composer.text() == "half-written thought"


def test_opening_a_chat_shows_its_last_reply_numbers(qtbot, make_page, hearth_store):
    from app.engine.types import GenerationStats

    chat = hearth_store.create_chat("old chat")
    hearth_store.add_message(chat.id, "user", "hi")
    stats = GenerationStats(generated_tokens=12, tokens_per_second=42.0, context_used=345,
                            n_ctx=2048)
    hearth_store.add_message(chat.id, "assistant", "hello", stats=stats)
    page = make_page()
    page.open_chat(chat.id)
    assert page.status_line.speed_label.text() == "42.0 tok/s"
    assert page.status_line.context_bar.value() == 345
    assert page.status_line.context_bar.maximum() == 2048


def test_with_no_chat_open_the_settings_show_what_a_new_chat_gets(make_page):
    from app.engine.types import Sampling

    panel = make_page().settings_panel
    defaults = Sampling()
    assert not panel.isEnabled()
    assert panel.temperature.value() == pytest.approx(defaults.temperature)
    assert panel.max_tokens.value() == defaults.max_tokens
    assert panel.repeat_penalty.value() == pytest.approx(defaults.repeat_penalty)


def _count_renders(monkeypatch, page: ChatPage) -> list[int]:
    """Message ids the delegate converts from Markdown, in order."""
    delegate = page.view.delegate
    rendered: list[int] = []
    real = delegate._render

    def counting(record, *args):
        rendered.append(record.id)
        return real(record, *args)

    monkeypatch.setattr(delegate, "_render", counting)
    return rendered


def test_a_streaming_tick_renders_only_the_streaming_row_with_many_rows_exposed(
        qtbot, make_page, hearth_store, monkeypatch):
    from app.ui.chat.message_delegate import CACHE_SIZE

    chat = hearth_store.create_chat("Long")
    ids = [hearth_store.add_message(chat.id, "assistant" if i % 2 else "user",
                                    f"message {i} with **Markdown**").id for i in range(600)]
    page = make_page()
    page.open_chat(chat.id)
    assert page.view.select_message(ids[10])  # a search hit far back exposes ~600 rows
    assert page.messages.rowCount() == 590 + CONTEXT_ROWS > CACHE_SIZE
    page.view.doItemsLayout()
    qtbot.wait(20)
    rendered = _count_renders(monkeypatch, page)
    for tick in range(5):
        page.messages.append_to_last(f" more {tick}")
        page.view.doItemsLayout()  # what the view's delayed relayout does after each tick
        page.view.viewport().repaint()
    qtbot.wait(20)
    assert rendered and set(rendered) == {ids[-1]}
    assert len(rendered) <= 5


def test_search_paging_fetches_the_rows_it_needs_in_one_insert(qtbot, make_page, hearth_store):
    chat = hearth_store.create_chat("Long")
    ids = [hearth_store.add_message(chat.id, "user", f"m{i}").id for i in range(500)]
    page = make_page()
    page.open_chat(chat.id)
    inserts = []
    page.messages.rowsInserted.connect(lambda _p, first, last: inserts.append(last - first + 1))
    assert page.view.select_message(ids[100])
    assert inserts == [500 - 100 - WINDOW + CONTEXT_ROWS]
    assert page.view.selected_record().id == ids[100]
    assert page.messages.record(0).id == ids[100 - CONTEXT_ROWS]


def test_a_long_streaming_reply_is_converted_at_most_every_quarter_second(
        qtbot, make_page, hearth_store, monkeypatch):
    from app.ui.chat import message_delegate

    monkeypatch.setattr(message_delegate, "CHEAP_RENDER_S", 0.0, raising=False)  # all costly
    chat = hearth_store.create_chat("Streaming")
    hearth_store.add_message(chat.id, "user", "write code")
    code = "\n".join(f"def f{i}(x):\n    return x * {i}" for i in range(300))
    hearth_store.add_message(chat.id, "assistant", f"Here:\n\n```python\n{code}\n",
                             status="streaming")
    page = make_page()
    page.open_chat(chat.id)
    page.view.doItemsLayout()
    rendered = _count_renders(monkeypatch, page)
    started = time.monotonic()
    for tick in range(25):  # one second of 40 ms ticks
        page.messages.append_to_last(f"\ndef g{tick}(): pass")
        qtbot.wait(40)
    elapsed = time.monotonic() - started
    assert 1 <= len(rendered) <= elapsed / message_delegate.STREAM_RENDER_INTERVAL_S + 2
    # Without further text the row still catches up with what has arrived.
    qtbot.waitUntil(lambda: "def g24()" in shown_text(page, 1), timeout=2_000)

    count = len(rendered)
    page.messages.append_to_last("\n```\nDone.")
    page.messages.set_last_state("complete", stats=STATS)
    assert shown_text(page, 1).rstrip().endswith("tok/s · TTFT 0.10 s · 5 tokens")
    assert "Done." in shown_text(page, 1) and len(rendered) == count + 1  # final: at once


def test_opening_and_leaving_a_chat_keeps_sampling_the_panel_cannot_show(qtbot, make_page,
                                                                        hearth_store, monkeypatch):
    from app.engine.types import Sampling

    wild = Sampling(temperature=2.5, max_tokens=200_000, top_k=40, stop=["###"])
    odd = hearth_store.create_chat("Set by the CLI", sampling=wild).id
    other = seed_chat(hearth_store, "Other", ("user", "hi"))
    page = make_page()
    writes = []
    real_update = hearth_store.update_chat
    monkeypatch.setattr(hearth_store, "update_chat",
                        lambda chat_id, **kw: writes.append(chat_id) or real_update(chat_id, **kw))
    page.open_chat(odd)
    assert page.settings_panel.temperature.value() == 2.0  # the most the spin box shows
    page.open_chat(other)
    page.open_chat(odd)
    page.open_chat(other)
    assert writes == []
    assert hearth_store.get_chat(odd).sampling == wild

    # A user edit saves that field only; the values the panel cannot show survive it.
    page.open_chat(odd)
    page.settings_panel.top_k.setValue(7)
    page.open_chat(other)
    assert hearth_store.get_chat(odd).sampling == Sampling(
        temperature=2.5, max_tokens=200_000, top_k=7, stop=["###"])


def test_model_picker_recovers_from_an_unexpected_load_failure(qtbot, bridge, make_page,
                                                               tiny_model, monkeypatch):
    from app.engine.inference import host as host_module

    class Broken(RuntimeError):
        pass

    def broken(*_args, **_kwargs):
        raise Broken("the loader broke")

    monkeypatch.setattr(host_module, "Runtime", broken)
    page = make_page()
    picker = page.model_picker
    with qtbot.waitSignal(bridge.failed, timeout=60_000):
        picker.load_model(str(tiny_model))
    assert not picker.loading
    assert picker.load_button.text() == "Load" and not picker.progress.isVisible()
    assert "the loader broke" in picker.error_label.text()


def test_sending_moves_the_chat_to_the_top_without_reloading_the_list(qtbot, make_page,
                                                                      hearth_store, monkeypatch):
    older = hearth_store.create_chat("New chat").id
    newer = seed_chat(hearth_store, "Newer", ("user", "hi"))
    page = make_page()
    page.open_chat(older)
    assert page.chat_list.chat_ids() == [newer, older]
    reloads = []
    real_list = hearth_store.list_chats
    monkeypatch.setattr(hearth_store, "list_chats", lambda: reloads.append(1) or real_list())
    send(qtbot, page, "Plan a trip to Porto")
    wait_idle(qtbot, page)  # fails (no model); the chat was still used
    assert reloads == []
    assert page.chat_list.chat_ids() == [older, newer]
    assert page.chat_list.current_chat_id() == older
    assert page.chat_list.chats.item(0).text() == "Plan a trip to Porto"
    assert [c.id for c in real_list()] == [older, newer]  # the same order as the Store's


def test_switching_versions_replaces_only_the_rows_after_that_point(qtbot, make_page,
                                                                     hearth_store, tmp_path):
    chat = hearth_store.create_chat("Versions")
    for i in range(30):  # an earlier conversation that must not be laid out again
        hearth_store.add_message(chat.id, "user", f"earlier {i}")
    question = hearth_store.add_message(chat.id, "user", "Name a bird")
    hearth_store.add_message(chat.id, "assistant", "A heron")
    hearth_store.add_message(chat.id, "user", "Where does it live?")
    hearth_store.add_message(chat.id, "assistant", "By rivers")
    newest = hearth_store.add_message(chat.id, "assistant", "A kingfisher", parent_id=question.id)
    page = make_page()
    assert [m.content for m in page.messages.records()][-2:] == ["Name a bird", "A kingfisher"]
    row = page.messages.rowCount() - 1
    assert version_shown(page, row) == (2, 2)
    assert version_shown(page, row - 1) is None
    changes = []
    page.messages.rowsRemoved.connect(lambda _p, first, last: changes.append(("-", first, last)))
    page.messages.rowsInserted.connect(lambda _p, first, last: changes.append(("+", first, last)))
    page.messages.modelReset.connect(lambda: changes.append("reset"))

    click_version_arrow(qtbot, page, row, +1)  # already the newest: nothing happens
    assert changes == []
    click_version_arrow(qtbot, page, row, -1)
    assert [m.content for m in page.messages.records()][-4:] == [
        "Name a bird", "A heron", "Where does it live?", "By rivers"]
    assert changes == [("-", row, row), ("+", row, row + 2)]
    assert version_shown(page, row) == (1, 2)
    md = page.export_to(tmp_path / "chat.md", "markdown").read_text(encoding="utf-8")
    assert "By rivers" in md and "kingfisher" not in md  # the branch on screen

    # The same from the message's menu, for the keyboard.
    view = page.view
    menu = view.context_menu_at(view.visualRect(page.messages.index(row, 0)).center())
    assert "Next version" in [a.text() for a in menu.actions()]
    assert not view.previous_version_action.isEnabled()
    view.next_version_action.trigger()
    assert page.messages.last_record().content == "A kingfisher"
    view.context_menu_at(view.visualRect(page.messages.index(row, 0)).center())
    view.previous_version_action.trigger()
    assert page.messages.last_record().content == "By rivers"

    # The branch on screen survives reopening; a search hit on the other branch switches to it.
    page.close()
    again = make_page()
    assert again.messages.last_record().content == "By rivers"
    again.chat_list.hitActivated.emit(chat.id, newest.id)
    assert again.messages.last_record().id == newest.id
    assert again.view.selected_record().content == "A kingfisher"
