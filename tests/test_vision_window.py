"""Images in the chat window: attached by the menu, pasted or dropped into the composer, checked
at once, sent to a real tiny vision model with its projector, shown as thumbnails that open full
size, saved with the chat (files named by content, kept while any message names them) and
exported."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from chat_page_support import load, use_sampling, wait_idle
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
)
from PySide6.QtWidgets import QApplication, QFileDialog
from sqlalchemy import update

from app.engine.gguf.info import read_model_info
from app.models.store import Store
from app.models.tables import Message
from app.services.chat_images import DECODED, read_attachment, save_attachments
from app.ui.chat.message_images import LOADING, MISSING_TEXT


def _png(path: Path, colour=(200, 30, 40), size=(120, 80)) -> Path:
    Image.new("RGB", size, colour).save(path, "PNG")
    return path


def _attach_by_menu(page, monkeypatch, *paths: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        lambda *a, **k: ([str(p) for p in paths], "Images"))
    [action] = [a for a in page.composer.attach_button.menu().actions() if a.text() == "Images…"]
    action.trigger()
    _wait_read(page.composer)


def _wait_read(composer) -> None:
    """Until the offered images are read and checked (off the GUI thread)."""
    deadline = time.monotonic() + 10
    while composer.reading and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.005)
    assert not composer.reading


def _thumbnail_rects(page, row: int):
    index = page.messages.index(row, 0)
    return page.view.delegate._layout(page.view.visualRect(index), index)[1].images


@pytest.fixture
def vision_library(hearth_store, tiny_vision_model, tiny_chat_model):
    """The library holds the tiny vision model (its projector beside it) and a text model."""
    hearth_store.add_model_file(read_model_info(tiny_vision_model.model))
    hearth_store.add_model_file(read_model_info(tiny_chat_model))
    return tiny_vision_model


def test_an_attached_image_is_sent_shown_opened_and_counted(
    qtbot, bridge, make_page, vision_library, tmp_path, monkeypatch, hearth_home
):
    page = make_page()
    load(qtbot, bridge, page, vision_library.model, n_ctx=256, n_threads=1)
    assert bridge.loaded_projector == str(vision_library.mmproj)
    page.new_chat()
    use_sampling(page, max_tokens=6)
    _attach_by_menu(page, monkeypatch, _png(tmp_path / "red square.png"))
    assert [a.name for a in page.composer.images] == ["red square.png"]
    assert page.composer.image_strip.isVisible() and len(page.composer.image_strip.thumbnails) == 1

    page.composer.input.setPlainText("what is this")
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)
    wait_idle(qtbot, page)

    assert page.composer.images == [] and not page.composer.image_strip.isVisible()
    user, reply = page.messages.records()
    assert reply.status == "complete", reply.error
    stats = page.messages.stats_of(reply)
    assert stats.image_tokens == vision_library.image_tokens == 16 and stats.generated_tokens
    assert page._store.get_message(reply.id).stats.image_tokens == 16
    assert "(16 image)" in page.status_line.context_bar.format()
    [stored] = user.images
    assert (stored.name, stored.width, stored.height) == ("red square.png", 120, 80)
    assert (hearth_home / "images" / stored.file).is_file()

    # The sent message shows its thumbnail; a click opens the image at full size.
    [rect] = _thumbnail_rects(page, 0)
    assert rect.height() == 96 and rect.width() == 144  # 120 × 80 scaled to 96 px high
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    viewer = page.view.image_viewer
    assert viewer is not None and viewer.isVisible()
    assert viewer.picture.pixmap().size().toTuple() == (120, 80)
    assert viewer.windowTitle() == "red square.png"
    viewer.close()


def test_paste_and_drop_add_images_checked_at_once(qtbot, make_page, tmp_path):
    page = make_page()
    composer = page.composer
    composer.input.setPlainText("draft")

    pasted = QImage(30, 20, QImage.Format.Format_RGB888)
    pasted.fill(Qt.GlobalColor.blue)
    mime = QMimeData()
    mime.setImageData(pasted)
    QGuiApplication.clipboard().setMimeData(mime)
    composer.input.setFocus()
    qtbot.keyClick(composer.input, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    _wait_read(composer)
    # The clipboard owns the data now: cleared while Qt runs, not at the interpreter's exit.
    QGuiApplication.clipboard().clear()
    assert [(a.image.width, a.image.height) for a in composer.images] == [(30, 20)]
    assert composer.images[0].image.rgb[:3] == bytes((0, 0, 255))

    # A GIF's first frame, a WebP and a JPEG dropped as files.
    frames = [Image.new("RGB", (16, 16), c) for c in ((0, 200, 0), (200, 0, 0))]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    webp, jpeg = tmp_path / "pic.webp", tmp_path / "photo.jpg"
    Image.new("RGB", (24, 24), (10, 10, 10)).save(webp, "WEBP")
    Image.new("RGB", (40, 30), (250, 250, 250)).save(jpeg, "JPEG")
    _drag_and_drop(composer.input.viewport(), gif, webp)  # onto the text box
    _drag_and_drop(composer, jpeg)  # onto the composer around it
    _wait_read(composer)
    assert [a.name for a in composer.images] == ["pasted image.png", "anim.gif", "pic.webp",
                                                 "photo.jpg"]
    first_frame = composer.images[1].image
    assert first_frame.format == "GIF" and first_frame.rgb[:3] == bytes((0, 200, 0))
    assert composer.text() == "draft"
    assert len(composer.image_strip.thumbnails) == 4

    # Removing one leaves the others.
    composer.image_strip.remove_buttons[0].click()
    assert [a.name for a in composer.images] == ["anim.gif", "pic.webp", "photo.jpg"]


def _drag_and_drop(target, *files: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in files])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    for event in (QDragEnterEvent(QPoint(5, 5), *args), QDragMoveEvent(QPoint(5, 5), *args),
                  QDropEvent(QPointF(5, 5), *args)):
        QGuiApplication.sendEvent(target, event)
        assert event.isAccepted()


def _bomb_png(path: Path) -> Path:
    """A tiny PNG whose header declares 100,000 × 100,000 pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_every_bad_image_is_refused_with_its_reason_and_nothing_is_lost(
    qtbot, make_page, tmp_path, monkeypatch
):
    page = make_page()
    composer = page.composer
    good = _png(tmp_path / "good.png")
    _attach_by_menu(page, monkeypatch, good)
    composer.input.setPlainText("my long question")
    good_bytes = good.read_bytes()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good_bytes[: len(good_bytes) // 2])
    renamed = tmp_path / "notes.png"
    renamed.write_text("just some text, not a picture")
    cases = {
        empty: "empty (0 bytes)",
        truncated: "truncated or damaged",
        renamed: "not an image Hearth can read",
        _bomb_png(tmp_path / "bomb.png"): "too many pixels to decode safely",
    }
    for path, reason in cases.items():
        _attach_by_menu(page, monkeypatch, path)
        notice = page.status_line.notice_label.text()
        assert path.name in notice and reason in notice, notice
        assert composer.text() == "my long question"
        assert [a.name for a in composer.images] == ["good.png"]

    # A bad one among good ones: the good ones are taken.
    _attach_by_menu(page, monkeypatch, renamed, _png(tmp_path / "second.png"))
    assert [a.name for a in composer.images] == ["good.png", "second.png"]
    assert "notes.png" in page.status_line.notice_label.text()


def test_a_model_without_vision_says_so_and_names_the_vision_models(
    qtbot, bridge, make_page, vision_library, tiny_chat_model, tmp_path, monkeypatch, hearth_store
):
    page = make_page()
    load(qtbot, bridge, page, tiny_chat_model, n_ctx=256, n_threads=1)
    assert bridge.loaded_projector is None
    page.new_chat()
    _attach_by_menu(page, monkeypatch, _png(tmp_path / "cat.png"))
    notice = page.status_line.notice_label.text()
    assert "tiny-chatml-f16.gguf cannot read images" in notice
    assert vision_library.model.name in notice and tiny_chat_model.name not in notice.split(":")[-1]

    page.status_line.show_notice("")
    page.composer.input.setPlainText("what is in it")
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)
    assert "cannot read images" in page.status_line.notice_label.text()
    assert page.composer.text() == "what is in it"  # nothing lost, nothing sent
    assert [a.name for a in page.composer.images] == ["cat.png"]
    assert hearth_store.list_messages(page.current_chat_id()) == []
    assert not page.controller.busy


def _seed_chat_with_image(store: Store, tmp_path: Path) -> tuple[int, Path]:
    attached = read_attachment(_png(tmp_path / "chart.png", (20, 160, 40), (64, 48)))
    image = attached.image
    stored = store.save_image(attached.data, attached.name, image.format, image.width,
                              image.height)
    chat = store.create_chat("Pictures")
    store.add_message(chat.id, "user", "look at this", images=[stored])
    store.add_message(chat.id, "assistant", "a green box")
    return chat.id, stored.path_in(store.images_folder)


def test_images_are_saved_shown_after_a_restart_and_exported(
    qtbot, make_page, hearth_store, hearth_home, tmp_path
):
    chat_id, file = _seed_chat_with_image(hearth_store, tmp_path)
    assert file.parent == hearth_home / "images"
    assert not DECODED.holds(file)  # saved by the Store directly: never decoded
    page = make_page()
    # Opening the chat decodes its images off the GUI thread, ready for the next reply.
    qtbot.waitUntil(lambda: DECODED.holds(file), timeout=10_000)
    assert page.current_chat_id() == chat_id
    [rect] = _thumbnail_rects(page, 0)
    assert rect.size().toTuple() == (128, 96)
    thumbnails = page.view.delegate.thumbnails
    qtbot.waitUntil(lambda: thumbnails.get(file) is not LOADING)  # decoded off the GUI thread
    assert thumbnails.get(file) is not None
    page.close()

    with Store.open(hearth_home / "hearth.db") as store:
        again = make_page(store)
        [rect] = _thumbnail_rects(again, 0)
        assert rect.width() == 128
        markdown = again.export_to(tmp_path / "chat.md", "markdown").read_text()
        assert "- Image: `chart.png` (64 × 48, image/png" in markdown
        assert file.name in markdown
        data = json.loads(again.export_to(tmp_path / "chat.json", "json").read_text())
        [image] = data["messages"][0]["images"]
        assert image == {"name": "chart.png", "path": str(file), "size": file.stat().st_size,
                         "media_type": "image/png", "width": 64, "height": 48}
        assert "images" not in data["messages"][1]


def test_a_missing_image_file_shows_as_missing_and_loses_nothing_else(
    qtbot, make_page, hearth_store, tmp_path
):
    _chat_id, file = _seed_chat_with_image(hearth_store, tmp_path)
    file.unlink()
    page = make_page()
    [rect] = _thumbnail_rects(page, 0)
    thumbnails = page.view.delegate.thumbnails
    qtbot.waitUntil(lambda: thumbnails.get(file) is not LOADING)
    assert thumbnails.get(file) is None
    shot = page.view.viewport().grab().toImage()
    assert not shot.isNull()
    assert page.view.delegate.document_for(page.messages.index(0, 0)).toPlainText() == (
        "look at this")
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert MISSING_TEXT in page.view.image_viewer.picture.text()
    page.view.image_viewer.close()


def test_one_image_is_stored_once_and_removed_with_its_last_message(
    hearth_store, tmp_path
):
    store = hearth_store
    attached = read_attachment(_png(tmp_path / "a.png"))
    [first] = save_attachments(store, [attached])
    [again] = save_attachments(store, [read_attachment(attached.data, "copy.png")])
    assert first.file == again.file and first.file.endswith(".png")
    assert [p.name for p in store.images_folder.iterdir()] == [first.file]
    one, two = store.create_chat("one"), store.create_chat("two")
    store.add_message(one.id, "user", "x", images=[first])
    question = store.add_message(two.id, "user", "y", images=[again])
    reply = store.add_message(two.id, "assistant", "z")

    store.delete_chat(one.id)
    assert first.path_in(store.images_folder).is_file()  # chat two still shows it
    # A second version of the question (without the image), then the first version deleted.
    store.add_message(two.id, "user", "y2", parent_id=None)
    store.delete_version(two.id, question.id)
    assert not first.path_in(store.images_folder).exists()
    assert store.get_message(reply.id) is None

    # Deleting a chat whose image another chat still shows keeps the file, then removes it.
    three, four = store.create_chat("three"), store.create_chat("four")
    [img] = save_attachments(store, [attached])
    store.add_message(three.id, "user", "p", images=[img])
    start = store.add_message(four.id, "user", "q", images=[img])
    store.delete_chat(three.id)
    assert img.path_in(store.images_folder).is_file()
    store.delete_messages_from(four.id, start.id)
    assert not img.path_in(store.images_folder).exists()


def test_damaged_image_entries_never_point_outside_the_images_folder(hearth_store):
    chat = hearth_store.create_chat("x")
    message = hearth_store.add_message(chat.id, "user", "hi")
    with hearth_store._writing() as session:  # a hand-edited or damaged database
        session.execute(update(Message).where(Message.id == message.id).values(
            images=[{"file": "../hearth.db"}, {"file": "ok.png", "name": "ok"}, "junk"]))
    [image] = hearth_store.get_message(message.id).images
    assert image.file == "ok.png"


def test_pasted_bytes_keep_their_format(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "JPEG")
    attached = read_attachment(buffer.getvalue(), "clip.jpg")
    assert attached.image.format == "JPEG" and attached.data == buffer.getvalue()


def test_offered_images_are_read_off_the_gui_thread(qtbot, make_page, tmp_path, monkeypatch):
    # Decoding a large photo takes a while: the window keeps answering meanwhile, and Send
    # waits until the images are checked.
    import threading

    import app.ui.chat.composer as composer_module

    threads = []
    real = composer_module.read_attachment

    def read(source, name):
        threads.append(threading.current_thread())
        return real(source, name)

    monkeypatch.setattr(composer_module, "read_attachment", read)
    page = make_page()
    composer = page.composer
    composer.add_images([(_png(tmp_path / "photo.png"), "photo.png")])
    composer.input.setPlainText("and this?")
    composer.submit()  # refused while the image is read: it would go without it
    assert composer.text() == "and this?"
    _wait_read(composer)
    assert [a.name for a in composer.images] == ["photo.png"]
    assert threads and threading.main_thread() not in threads
