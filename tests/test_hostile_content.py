"""Hostile text from outside renders inert: in the chat view, the Hub model card, the status
labels and the model picker nothing it names is loaded, memory stays bounded and rendering
finishes in time. Every string of hostile_inputs.HOSTILE goes through every surface."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hostile_inputs import HOSTILE, guard, hostile, make_canary
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QHelpEvent, QTextDocument
from PySide6.QtWidgets import QApplication, QLabel, QListWidget, QListWidgetItem, QToolTip

from app.engine.gguf.info import read_model_info
from app.engine.hub.api import HubModel
from app.testing.tiny_gguf import build_tiny_model
from app.ui.chat.page import ChatPage
from app.ui.chat.status_line import StatusLine
from app.ui.discover.details import ModelDetails, RepoDetails
from app.ui.inert_document import InertDocument, ResourceRefusals
from app.ui.main_window import LAST_MODEL_KEY
from app.ui.plain_text import escaped_rich, install_safe_tooltips

NAMES = sorted(HOSTILE)
MARK = "<img src="  # in each hostile name below: a label guessing HTML would render it


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return make_canary(tmp_path / "watched")


def test_the_watch_sees_what_a_plain_qt_document_would_read(qapp, canary):
    """The guard is not blind: Qt's own QTextDocument reads an image named in HTML from disk;
    the inert document asks for it and gets nothing."""
    html = f'<img src="{canary}"><p style="background-image: url({canary})">x</p>'
    with guard(canary.parent) as g:
        with g.check("plain QTextDocument"):
            plain = QTextDocument()
            plain.setHtml(html)
            plain.size()
    assert g.problems == ["plain QTextDocument: a file in the watched folder was opened"]

    refused = ResourceRefusals.count
    with guard(canary.parent) as g:
        with g.check("InertDocument"):
            inert = InertDocument()
            inert.setHtml(html)
            inert.size()
    assert g.problems == []
    assert ResourceRefusals.count > refused and ResourceRefusals.last == str(canary)


def test_chat_view_renders_every_hostile_reply_inert(qtbot, hearth_store, bridge, canary):
    page = ChatPage(hearth_store, bridge)
    qtbot.addWidget(page)
    page.resize(1000, 700)
    page.show()
    qtbot.waitExposed(page)
    with guard(canary.parent) as g:
        for name in NAMES:
            text = hostile(name, canary)
            answer = hearth_store.create_chat(text[:60])
            hearth_store.add_message(answer.id, "user", "Tell me")
            hearth_store.add_message(answer.id, "assistant", text)
            thought = hearth_store.create_chat("Thinking")
            hearth_store.add_message(thought.id, "assistant", f"<think>{text}</think>Done.")
            with g.check(f"chat: {name}"):
                page.open_chat(answer.id)
                page.view.viewport().grab()  # lays out and paints every visible bubble
            delegate = page.view.delegate
            assert delegate.document_for(page.messages.index(1, 0)).toPlainText().strip(), name
            assert page.title_label.textFormat() == Qt.TextFormat.PlainText
            page.open_chat(thought.id)
            with g.check(f"thinking: {name}"):
                delegate.toggle_thinking(page.messages.index(0, 0))
                page.view.viewport().grab()
            assert delegate.thinking_for(page.messages.index(0, 0)).toPlainText().strip(), name
    assert g.problems == []
    images = hostile("md image /dev/zero", canary)
    chat = hearth_store.create_chat("images")
    hearth_store.add_message(chat.id, "assistant", images)
    hearth_store.add_message(chat.id, "assistant", "Open \u202egpj.exe, it is safe")
    page.open_chat(chat.id)
    shown = page.view.delegate.document_for(page.messages.index(0, 0)).toPlainText()
    assert shown == "Look: [image: x — /dev/zero]"  # alt text and address, never fetched
    spoof = page.view.delegate.document_for(page.messages.index(1, 0)).toPlainText()
    assert spoof == "Open \ufffdgpj.exe, it is safe"  # no override to make it read "exe.jpg"
    assert isinstance(page.view.delegate.document_for(page.messages.index(0, 0)), InertDocument)


def test_model_card_and_repository_labels_render_inert(qtbot, canary):
    details = ModelDetails()
    qtbot.addWidget(details)
    details.resize(700, 800)
    details.show()
    with guard(canary.parent) as g:
        for name in NAMES:
            text = hostile(name, canary)
            model = HubModel(repo_id=f"evil/{text[:300]}", author=text[:300], downloads=1,
                             likes=1, last_modified=None, tags=(), notable_tags=(text[:100],),
                             licence=text[:100], parameters=None)
            with g.check(f"card: {name}"):
                details.show_loading(model)
                details.show_details(RepoDetails(model.repo_id, [], card=text))
                details.grab()
            assert details.card.toPlainText().strip(), name
            for label in (details.title, details.subtitle):
                assert label.textFormat() == Qt.TextFormat.PlainText
                assert text[:20] in label.text(), "shown literally"
    assert g.problems == []
    assert "<img" not in details.card.toHtml().lower()
    assert isinstance(details.card.document(), InertDocument)


def test_status_line_and_model_picker_show_gguf_text_literally(qtbot, hearth_store, bridge,
                                                               canary, tiny_model):
    page = ChatPage(hearth_store, bridge)
    qtbot.addWidget(page)
    page.show()
    status: StatusLine = page.status_line
    picker = page.model_picker
    info = read_model_info(tiny_model)
    with guard(canary.parent) as g:
        for name in NAMES:
            text = hostile(name, canary)
            evil = dataclasses.replace(info, name=text[:2000], file_type=text[:50])
            with g.check(f"labels: {name}"):
                status.show_notice(text)
                bridge.loaded.emit(0, str(tiny_model), evil, 512)
                page.grab()
            for label in (status.notice_label, picker.loaded_label, picker.format_label):
                assert label.textFormat() == Qt.TextFormat.PlainText, name
            assert status.notice_label.text() == text
    assert g.problems == []


def _hover(widget, point: QPoint | None = None) -> str:
    """What the tooltip of ``widget`` shows when the mouse rests on it."""
    point = point or QPoint(2, 2)
    event = QHelpEvent(QEvent.Type.ToolTip, point, widget.mapToGlobal(point))
    QApplication.sendEvent(widget, event)
    return QToolTip.text()


def test_every_tooltip_in_the_application_is_shown_escaped(qtbot, canary):
    install_safe_tooltips()
    label = QLabel("hover me")
    qtbot.addWidget(label)
    label.show()
    qtbot.waitExposed(label)
    with guard(canary.parent) as g:
        for name in NAMES:
            text = hostile(name, canary)
            label.setToolTip(text)
            with g.check(f"tooltip: {name}"):
                shown = _hover(label)
            assert shown == escaped_rich(text, 2000), name
    items = QListWidget()  # item views ask their model for the tooltip: shown escaped too
    qtbot.addWidget(items)
    item = QListWidgetItem("a model", items)
    item.setToolTip(f'<img src="{canary}">')
    items.show()
    qtbot.waitExposed(items)
    with guard(canary.parent) as g:
        with g.check("item tooltip"):
            shown = _hover(items.viewport(), items.visualItemRect(item).center())
    assert shown == escaped_rich(f'<img src="{canary}">')
    QToolTip.hideText()
    assert g.problems == []


def test_main_window_never_renders_a_hostile_gguf_name_as_html(qtbot, make_main_window,
                                                               hearth_store, canary, tmp_path):
    """A model whose GGUF name is an <img> tag, loaded for real, and a chat about it: every
    label in the window that shows the name shows it as text."""
    evil_name = f'Tiny <img src="{canary}"> <b>bold</b> ![x]({canary})'
    model = build_tiny_model(tmp_path / "evil.gguf", name=evil_name)
    record = hearth_store.add_model_file(read_model_info(model), "import")
    assert MARK in record.name
    hearth_store.set_setting(LAST_MODEL_KEY, str(model))  # the window loads it at start
    chat = hearth_store.create_chat(evil_name)
    hearth_store.add_message(chat.id, "user", evil_name)
    hearth_store.add_message(chat.id, "assistant", evil_name)

    with guard(canary.parent) as g:
        with g.check("main window"):
            window = make_main_window(starter=False)
            picker = window.chat_page.model_picker
            qtbot.waitUntil(lambda: MARK in picker.loaded_label.text(), timeout=30_000)
            for page in range(window.pages.count()):
                window.pages.setCurrentIndex(page)
                window.grab()
            window.pages.setCurrentIndex(0)
            tooltip = _hover(picker.loaded_label)
    assert g.problems == []
    showing = [label for label in window.findChildren(QLabel) if MARK in label.text()]
    assert len(showing) >= 2  # the chat title and the loaded model at least
    guessing = [label.objectName() or type(label).__name__ for label in showing
                if label.textFormat() != Qt.TextFormat.PlainText]
    assert guessing == []
    assert tooltip.startswith("<qt>") and MARK not in tooltip and "&lt;img src=" in tooltip
