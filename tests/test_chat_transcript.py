"""The Chat page's transcript: a window of rows over big chats, Markdown, thinking, copy,
following the reply, rendering only what changed, versions."""

from __future__ import annotations

import time

from chat_page_support import (
    COUNTING,
    STATS,
    click_version_arrow,
    load,
    seed_chat,
    send,
    shown_text,
    use_sampling,
    version_shown,
    wait_idle,
)
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication

from app.ui.chat.message_model import FETCH_BATCH, WINDOW
from app.ui.chat.message_view import CONTEXT_ROWS
from app.ui.chat.page import ChatPage

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
    code = "\n".join(f"print('hi {i}')" for i in range(30))
    seed_chat(hearth_store, "Code", ("user", "Show <b>code</b>"),
              ("assistant", f"Here is **bold** text:\n\n```python\n{code}\n```"))
    page = make_page()
    delegate = page.view.delegate
    user, reply = delegate.document_for(page.messages.index(0, 0)), \
        delegate.document_for(page.messages.index(1, 0))
    assert user.toPlainText() == "Show <b>code</b>"  # raw HTML shown as text
    assert "print('hi 29')" in reply.toPlainText() and "**" not in reply.toPlainText()
    assert "font-weight:700" in reply.toHtml()  # **bold**
    # The chat opens with its code uncoloured, and Pygments colours it (the `print` builtin)
    # moments later without moving anything.
    assert "color:#008000" not in reply.toHtml()
    height = page.view.visualRect(page.messages.index(1, 0)).height()
    qtbot.waitUntil(lambda: "color:#008000" in delegate.document_for(
        page.messages.index(1, 0)).toHtml(), timeout=2_000)
    assert page.view.visualRect(page.messages.index(1, 0)).height() == height


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


def _count_renders(monkeypatch, page: ChatPage) -> list[int]:
    """Message ids the delegate converts from Markdown, in order."""
    renderer = page.view.delegate.renderer
    rendered: list[int] = []
    real = renderer.render

    def counting(record, *args):
        rendered.append(record.id)
        return real(record, *args)

    monkeypatch.setattr(renderer, "render", counting)
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
