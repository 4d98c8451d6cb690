"""Image files no message names (a Send stopped while its images were saved, a message that
failed to store after its files were written) are removed at the next start once they are old
enough, on a worker the window's close waits for; and a chat's image warm-up stops and is waited
for when the Chat page shuts down. Real SQLite file, real files, real widgets."""

from __future__ import annotations

import io
import logging
import os
import threading
import time

from PIL import Image
from PySide6.QtCore import QThreadPool
from sqlalchemy import event

import app.services.chat_images as chat_images
from app.engine.gguf.info import read_model_info
from app.models.store import Store
from app.models.store.image_files import STRAY_AGE_S

OLD = time.time() - 2 * STRAY_AGE_S  # a stray this old has no Send still about to name it


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _save(store, colour: tuple[int, int, int], *, mtime: float | None = OLD,
          size: tuple[int, int] = (24, 16)):
    data = _png(colour, size)
    stored = store.save_image(data, f"{colour}.png", "PNG", *size)
    path = stored.path_in(store.images_folder)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return stored, path


def _attach(store, *images) -> None:
    chat = store.create_chat("With pictures")
    store.add_message(chat.id, "user", "look", images=list(images))


def test_old_strays_and_old_partial_writes_go_named_and_young_files_stay(hearth_store):
    named, named_path = _save(hearth_store, (200, 0, 0))
    _attach(hearth_store, named)
    _stray, stray_path = _save(hearth_store, (0, 200, 0))
    _young, young_path = _save(hearth_store, (0, 0, 200), mtime=None)  # a Send saving now
    folder = hearth_store.images_folder
    old_part, young_part, foreign = folder / ".part-crash1", folder / ".part-now", folder / "x.txt"
    for path in (old_part, young_part, foreign):
        path.write_bytes(b"123456")
    for path in (old_part, foreign):
        os.utime(path, (OLD, OLD))

    freed = stray_path.stat().st_size + old_part.stat().st_size

    removed = hearth_store.remove_stray_images()

    assert (removed.files, removed.bytes) == (2, freed)  # what the log reports
    assert not stray_path.exists() and not old_part.exists()
    assert named_path.is_file() and young_path.is_file() and young_part.is_file()
    assert foreign.is_file()  # not a name Hearth writes: not Hearth's to delete
    assert hearth_store.remove_stray_images().files == 0


def test_an_old_stray_saved_again_by_a_send_is_not_swept_before_its_message(hearth_store):
    stored, path = _save(hearth_store, (10, 10, 10))
    assert path.stat().st_mtime < time.time() - STRAY_AGE_S  # would be swept now
    again, _ = _save(hearth_store, (10, 10, 10), mtime=None)  # the user sends that image again
    assert again.file == stored.file

    assert hearth_store.remove_stray_images().files == 0
    assert path.is_file()
    _attach(hearth_store, again)  # the Send's message is stored after its save
    os.utime(path, (OLD, OLD))
    assert hearth_store.remove_stray_images().files == 0 and path.is_file()


def test_a_large_folder_is_listed_once_and_checked_a_few_hundred_names_per_query(hearth_store):
    named, named_path = _save(hearth_store, (1, 2, 3))
    _attach(hearth_store, named)
    folder = hearth_store.images_folder
    strays = [folder / f"{n:032x}.png" for n in range(1000)]
    for path in strays:
        path.write_bytes(b"x")
        os.utime(path, (OLD, OLD))
    queries: list[str] = []
    engine = hearth_store._engine

    def count(_conn, _cursor, statement, *_args) -> None:
        if "json_each" in statement:
            queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        sweep = hearth_store.stray_image_sweep()
        next(sweep)  # leftover partial writes: none
        first = next(sweep)  # one query's worth of names, then the caller may stop
        assert 0 < first.files <= 500 and len(queries) == 1
        sweep.close()
        assert sum(p.exists() for p in strays) == 1000 - first.files
        removed = hearth_store.remove_stray_images()
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert removed.files + first.files == 1000 and removed.bytes == removed.files
    assert 2 <= len(queries) <= 5  # 1001 names, a few hundred per query
    assert named_path.is_file() and not any(p.exists() for p in strays)


def test_closing_the_page_during_a_large_images_warm_up_waits_and_stops_early(
    qtbot, make_page, hearth_store, monkeypatch
):
    chat = hearth_store.create_chat("Photos")
    for n in range(3):  # three turns, each with a large photo decoded when the chat opens
        stored, _ = _save(hearth_store, (40 * n, 90, 10), mtime=None, size=(2000, 1500))
        hearth_store.add_message(chat.id, "user", f"photo {n}", images=[stored])
    gate, started, ended = threading.Event(), [], []
    real_load = chat_images.load_image

    def load_image(*args, **kwargs):
        started.append(threading.current_thread())
        gate.wait(10)
        try:
            return real_load(*args, **kwargs)
        finally:
            ended.append(True)

    monkeypatch.setattr(chat_images, "load_image", load_image)
    page = make_page()
    assert page.current_chat_id() == chat.id
    qtbot.waitUntil(lambda: bool(started), timeout=5_000)

    threading.Timer(0.2, gate.set).start()  # the decode ends while the page waits for it
    page.shutdown()
    # Nothing decodes on after the page is gone (the Store closes next), and the later turns'
    # photos were never started: the warm-up stopped.
    assert len(started) == len(ended) == 1
    assert threading.main_thread() not in started
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    qtbot.wait(100)
    assert len(started) == 1


def _window_with_strays(hearth_store, tiny_model):
    hearth_store.add_model_file(read_model_info(tiny_model), "import")  # no starter needed
    named, named_path = _save(hearth_store, (7, 7, 7))
    _attach(hearth_store, named)
    _stray, stray_path = _save(hearth_store, (8, 8, 8))
    _young, young_path = _save(hearth_store, (9, 9, 9), mtime=None)
    return named_path, stray_path, young_path


def _gated_sweep(monkeypatch, gate: threading.Event, notes: list[str], threads: list):
    real = Store.stray_image_sweep

    def sweep(self, *args, **kwargs):
        threads.append(threading.current_thread())
        gate.wait(10)
        notes.append("sweep stepped")
        return (yield from real(self, *args, **kwargs))

    monkeypatch.setattr(Store, "stray_image_sweep", sweep)


def test_the_window_sweeps_stray_images_at_start_off_the_gui_thread(
    qtbot, make_main_window, hearth_store, tiny_model, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="app.ui.main_window")
    named, stray, young = _window_with_strays(hearth_store, tiny_model)
    gate, notes, threads = threading.Event(), [], []
    _gated_sweep(monkeypatch, gate, notes, threads)

    window = make_main_window(starter=False)
    # The window painted while the sweep still waited: it does not hold up the start.
    assert window.isVisible() and stray.is_file()
    gate.set()
    qtbot.waitUntil(lambda: not stray.exists(), timeout=10_000)
    qtbot.waitUntil(lambda: "removed 1 stray image files" in caplog.text, timeout=5_000)

    assert threads and threading.main_thread() not in threads
    assert named.is_file() and young.is_file()


def test_closing_the_window_waits_for_the_sweep_before_the_store_closes(
    qtbot, make_main_window, hearth_store, tiny_model, monkeypatch
):
    _window_with_strays(hearth_store, tiny_model)
    gate, notes, threads = threading.Event(), [], []
    _gated_sweep(monkeypatch, gate, notes, threads)
    window = make_main_window(starter=False)
    qtbot.waitUntil(lambda: bool(threads), timeout=5_000)
    store = window.context.store
    real_close = store.close

    def close() -> None:
        notes.append("store closed")
        real_close()

    monkeypatch.setattr(store, "close", close)
    threading.Timer(0.2, gate.set).start()
    window.close()

    assert notes == ["sweep stepped", "store closed"]
