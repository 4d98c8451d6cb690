"""Keyboard shortcuts of the chat (pressed through the window, as a user's keys arrive) and
dropping .gguf files on the window."""

from __future__ import annotations

import pytest
from chat_page_support import COUNTING, load, seed_chat, use_sampling, wait_idle
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QApplication

from app.engine.gguf.info import read_model_info
from app.ui.chat.shortcuts import ChatShortcuts
from app.ui.main_window import CHAT_PAGE, MODELS_PAGE


def press(qtbot, page, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key press the way the window system delivers it, so shortcuts see it."""
    qtbot.keyClick(page.window().windowHandle(), key, modifier)


def shortcuts_on(page) -> ChatShortcuts:
    shown = []
    shortcuts = ChatShortcuts(page, page, lambda: shown.append(True))
    page.activateWindow()
    return shortcuts


def test_new_chat_search_and_copy_last_reply(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Old", ("user", "2+2?"),
              ("assistant", "<think>add them</think>It is **4**."))
    page = make_page()
    shortcuts_on(page)
    page.view.setFocus()
    before = page.current_chat_id()

    press(qtbot, page, Qt.Key.Key_C,
          Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert QGuiApplication.clipboard().text() == "It is **4**."  # no reasoning

    press(qtbot, page, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is page.chat_list.search_box
    page.view.setFocus()
    press(qtbot, page, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is page.chat_list.search_box

    press(qtbot, page, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert page.current_chat_id() != before
    assert page.messages.rowCount() == 0
    assert QApplication.focusWidget() is page.composer.input


def test_up_in_an_empty_composer_edits_the_last_message(qtbot, make_page, hearth_store):
    seed_chat(hearth_store, "Edit", ("user", "first"), ("assistant", "one"),
              ("user", "second question"), ("assistant", "two"))
    page = make_page()
    shortcuts_on(page)
    page.composer.input.setFocus()
    page.composer.input.setPlainText("draft")
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Up)
    assert page.composer.editing_id is None  # a draft is not replaced

    page.composer.input.clear()
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Up)
    assert page.composer.text() == "second question"
    assert page.composer.editing_id == page.messages.record(2).id
    assert page.composer.edit_banner.isVisible()


@pytest.mark.starter
def test_escape_stops_a_streaming_reply(qtbot, bridge, make_page, starter_model):
    page = make_page()
    shortcuts = shortcuts_on(page)
    load(qtbot, bridge, page, starter_model)
    page.new_chat()
    # The starter keeps counting at temperature 0 (a random tiny model may end at once).
    use_sampling(page, max_tokens=2_000, temperature=0.0)
    assert not shortcuts.stop.isEnabled()  # Esc is left to others when nothing streams
    page.composer.input.setPlainText(COUNTING)
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(page.messages.last_record().content) >= 5, timeout=30_000)
    assert page.controller.busy
    press(qtbot, page, Qt.Key.Key_Escape)
    wait_idle(qtbot, page)
    reply = page.messages.last_record()
    assert reply.status == "partial"
    assert page._store.get_message(reply.id).stats.stop_reason == "cancelled"


def drop(window, paths) -> None:
    """Drag ``paths`` over the window (it must accept them) and drop them."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPoint(10, 10).toPointF(), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)


def test_dropping_gguf_files_on_the_window_imports_them(
        qtbot, make_main_window, hearth_store, tiny_model, tiny_chat_model, tmp_path):
    # A library that already holds a model, so the window starts without the starter.
    hearth_store.add_model_file(read_model_info(tiny_model), "import")
    window = make_main_window(starter=False)
    window.show_page(MODELS_PAGE)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")

    drop(window, [notes])
    assert "Not a GGUF model: notes.txt" in window.statusBar().currentMessage()
    assert len(window.context.store.list_model_files()) == 1

    # On the composer (which takes dropped text itself), .gguf files are imported too.
    window.show_page(CHAT_PAGE)
    drop(window.chat_page.composer.input.viewport(), [tiny_chat_model])
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Imported"),
                    timeout=10_000)
    assert "Imported 1 model(s): tiny-chatml-f16.gguf" in window.statusBar().currentMessage()
    assert window.chat_page.composer.text() == ""
    paths = {record.path for record in window.context.store.list_model_files()}
    assert str(tiny_chat_model) in paths
    # The chat's model picker offers it at once.
    picker = window.chat_page.model_picker
    assert any("tiny-chatml" in picker.combo.itemText(i) for i in range(picker.combo.count()))

    window.statusBar().clearMessage()
    drop(window, [tiny_chat_model, notes])  # already there, and a file that is no model
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("No model"),
                    timeout=10_000)
    message = window.statusBar().currentMessage()
    assert "No model imported; skipped 1 (already in the library)" in message
    assert "not GGUF, left alone: notes.txt" in message
    assert len(window.context.store.list_model_files()) == 2
