"""Images in the chat do their file work off the GUI thread (DESIGN rule 3): the images attached
at Send are saved on a worker before the message is stored (the composer keeps them until then,
and for good when saving fails or another chat is opened), and a reopened chat's images that
were never decoded are decoded on a worker for the next reply, with a real tiny vision model."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from chat_page_support import load, use_sampling, wait_idle
from PIL import Image
from PySide6.QtCore import Qt

import app.services.chat_images as chat_images
import app.ui.chat.page as page_module
from app.engine.gguf.info import read_model_info
from app.services.chat_images import DECODED, read_attachment


def _png(path: Path, colour: tuple[int, int, int], size=(48, 32)) -> Path:
    Image.new("RGB", size, colour).save(path, "PNG")
    return path


@pytest.fixture
def vision_page(qtbot, bridge, make_page, hearth_store, tiny_vision_model):
    """The Chat page with the tiny vision model loaded and a new chat open."""
    hearth_store.add_model_file(read_model_info(tiny_vision_model.model))
    page = make_page()
    load(qtbot, bridge, page, tiny_vision_model.model, n_ctx=256, n_threads=1)
    page.new_chat()
    use_sampling(page, max_tokens=4)
    return page


def _compose(qtbot, page, text: str, image: Path) -> None:
    composer = page.composer
    composer.add_images([(image, image.name)])
    qtbot.waitUntil(lambda: not composer.reading, timeout=10_000)
    composer.input.setPlainText(text)


def _gated_save(store, monkeypatch):
    """Make the Store's image saving wait for ``gate`` and note the thread it runs on."""
    gate, done, threads = threading.Event(), threading.Event(), []
    real = store.save_image

    def save_image(*args, **kwargs):
        threads.append(threading.current_thread())
        gate.wait(10)
        try:
            return real(*args, **kwargs)
        finally:
            done.set()

    monkeypatch.setattr(store, "save_image", save_image)
    return gate, done, threads


def test_images_are_saved_off_the_gui_thread_before_the_message_is_stored(
    qtbot, vision_page, hearth_store, hearth_home, tmp_path, monkeypatch
):
    page, composer = vision_page, vision_page.composer
    gate, _done, threads = _gated_save(hearth_store, monkeypatch)
    _compose(qtbot, page, "what colour?", _png(tmp_path / "blue.png", (10, 20, 230)))
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)

    # While the image is saved the window answers, Send is Stop, and a second Enter sends
    # nothing more; the message waits in the composer, not yet in the chat.
    qtbot.waitUntil(lambda: bool(threads), timeout=5_000)
    assert composer.busy and composer.button.text() == "Stop"
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)
    assert composer.text() == "what colour?" and [a.name for a in composer.images] == ["blue.png"]
    assert page.messages.records() == []
    gate.set()
    wait_idle(qtbot, page)

    assert threads and threading.main_thread() not in threads
    user, reply = page.messages.records()  # the message, then its reply: sent once
    assert (user.role, user.content, [i.name for i in user.images]) == (
        "user", "what colour?", ["blue.png"])
    assert (hearth_home / "images" / user.images[0].file).is_file()
    assert reply.status == "complete", reply.error
    assert page.messages.stats_of(reply).image_tokens == 16
    assert composer.text() == "" and composer.images == []
    assert len(hearth_store.list_messages(page.current_chat_id())) == 2


def test_a_save_that_fails_keeps_the_message_in_the_composer_and_says_why(
    qtbot, vision_page, hearth_store, tmp_path
):
    page, composer = vision_page, vision_page.composer
    hearth_store.images_folder.parent.mkdir(parents=True, exist_ok=True)
    hearth_store.images_folder.write_text("a file where the images folder should be")
    _compose(qtbot, page, "keep this text", _png(tmp_path / "kept.png", (200, 200, 0)))
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not page.controller.busy, timeout=10_000)

    notice = page.status_line.notice_label.text()
    assert "Could not save the images" in notice and str(hearth_store.images_folder) in notice
    assert composer.text() == "keep this text" and [a.name for a in composer.images] == [
        "kept.png"]
    assert composer.image_strip.isVisible() and composer.button.text() == "Send"
    assert page.messages.records() == []
    assert hearth_store.list_messages(page.current_chat_id()) == []


def test_opening_another_chat_while_saving_stores_nothing_anywhere(
    qtbot, vision_page, hearth_store, tmp_path, monkeypatch
):
    page, composer = vision_page, vision_page.composer
    first = page.current_chat_id()
    other = hearth_store.create_chat("Other").id
    gate, done, threads = _gated_save(hearth_store, monkeypatch)
    _compose(qtbot, page, "meant for the first chat", _png(tmp_path / "g.png", (0, 150, 0)))
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(threads), timeout=5_000)

    page.open_chat(other)
    assert not page.controller.busy and composer.button.text() == "Send"
    gate.set()
    assert done.wait(10)
    qtbot.wait(200)  # the save's result arrives, and is ignored

    assert page.current_chat_id() == other and page.messages.records() == []
    assert hearth_store.list_messages(first) == [] and hearth_store.list_messages(other) == []
    assert composer.text() == "meant for the first chat"
    assert [a.name for a in composer.images] == ["g.png"]
    assert "Not sent" in page.status_line.notice_label.text()


def test_a_reopened_chats_undecoded_image_is_decoded_off_the_gui_thread_and_sent(
    qtbot, bridge, make_page, hearth_store, tiny_vision_model, tmp_path, monkeypatch
):
    attached = read_attachment(_png(tmp_path / "chart.png", (90, 10, 160), (40, 40)))
    image = attached.image
    stored = hearth_store.save_image(attached.data, attached.name, image.format, image.width,
                                     image.height)
    chat = hearth_store.create_chat("Earlier")
    hearth_store.add_message(chat.id, "user", "remember this picture", images=[stored])
    hearth_store.add_message(chat.id, "assistant", "a purple square")
    file = stored.path_in(hearth_store.images_folder)
    # The chat's warm-up never runs: the next reply itself must decode the image.
    monkeypatch.setattr(page_module, "warm", lambda records, folder: 0)
    threads = []
    real_load = chat_images.load_image

    def load_image(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_load(*args, **kwargs)

    monkeypatch.setattr(chat_images, "load_image", load_image)
    page = make_page()
    assert page.current_chat_id() == chat.id
    load(qtbot, bridge, page, tiny_vision_model.model, n_ctx=256, n_threads=1)
    use_sampling(page, max_tokens=4)
    assert not DECODED.holds(file)

    page.composer.input.setPlainText("what was it?")
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)
    wait_idle(qtbot, page)

    reply = page.messages.records()[-1]
    assert reply.status == "complete", reply.error
    assert page.messages.stats_of(reply).image_tokens == 16  # the earlier turn's image
    assert threads and threading.main_thread() not in threads
    assert DECODED.holds(file)


def test_closing_the_page_while_saving_stores_nothing_and_does_not_crash(
    qtbot, vision_page, hearth_store, tmp_path, monkeypatch
):
    page = vision_page
    chat_id = page.current_chat_id()
    gate, done, threads = _gated_save(hearth_store, monkeypatch)
    _compose(qtbot, page, "closing soon", _png(tmp_path / "late.png", (5, 5, 5)))
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(threads), timeout=5_000)

    threading.Timer(0.2, gate.set).start()  # the save ends while the page waits for it
    page.shutdown()
    assert done.is_set()
    qtbot.wait(100)  # a late result would arrive now: it is dropped
    assert hearth_store.list_messages(chat_id) == [] and page.messages.records() == []
