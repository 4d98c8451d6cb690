"""The main window with real pages, a real Store and real models: navigation, My Models, restore."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.engine.starter import STARTER_RELATIVE_PATH
from app.ui.main_window import (
    CHAT_PAGE,
    DEVELOPER_PAGE,
    DISCOVER_PAGE,
    GEOMETRY_KEY,
    HARDWARE_PAGE,
    LAST_MODEL_KEY,
    MODELS_PAGE,
)
from app.ui.models import page as models_page_module

LOAD_TIMEOUT_MS = 60_000


def _click_nav(qtbot, window, row: int) -> None:
    nav = window.nav
    rect = nav.visualItemRect(nav.item(row))
    qtbot.mouseClick(nav.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _paths(window) -> list[str]:
    model = window.models_page.table_model
    return [model.record(row).path for row in range(model.rowCount())]


@pytest.fixture
def warnings(monkeypatch) -> list[tuple[str, str]]:
    """Message boxes the window would have shown, as (title, text)."""
    shown: list[tuple[str, str]] = []
    for kind in ("warning", "critical", "information"):
        monkeypatch.setattr(
            QMessageBox, kind, lambda _parent, title, text, *_a, **_k: shown.append((title, text))
        )
    return shown


def _import_through_dialog(qtbot, window, monkeypatch, *paths: Path) -> None:
    monkeypatch.setattr(
        QFileDialog, "getOpenFileNames", lambda *_a, **_k: ([str(p) for p in paths], "")
    )
    page = window.models_page
    qtbot.mouseClick(page.import_file_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.import_file_button.isEnabled(), timeout=10_000)


def test_navigation_switches_between_pages(qtbot, main_window):
    assert [main_window.nav.item(i).text() for i in range(main_window.nav.count())] == [
        "Chat", "My Models", "Discover", "Hardware", "Developer"
    ]
    assert main_window.pages.currentWidget() is main_window.chat_page
    for row, page in ((MODELS_PAGE, main_window.models_page),
                      (DISCOVER_PAGE, main_window.discover_page),
                      (HARDWARE_PAGE, main_window.hardware_page),
                      (DEVELOPER_PAGE, main_window.developer_page),
                      (CHAT_PAGE, main_window.chat_page)):
        _click_nav(qtbot, main_window, row)
        assert main_window.pages.currentWidget() is page


def test_the_registered_starter_is_listed_and_loaded_at_start(qtbot, main_window, starter_model):
    assert _paths(main_window) == [str(starter_model)]
    bridge = main_window.context.bridge
    qtbot.waitUntil(lambda: bridge.loaded_path == str(starter_model), timeout=LOAD_TIMEOUT_MS)
    assert main_window.context.store.get_setting(LAST_MODEL_KEY) == str(starter_model)


def test_import_a_model_file_through_the_page(qtbot, main_window, monkeypatch, tiny_model,
                                              warnings):
    _import_through_dialog(qtbot, main_window, monkeypatch, tiny_model)
    assert str(tiny_model) in _paths(main_window) and warnings == []
    page = main_window.models_page
    assert page.selected_record().path == str(tiny_model)
    assert "Architecture:  llama" in page.details.toPlainText()
    assert "Added 1 model" in page.status_label.text()
    picker = main_window.chat_page.model_picker
    assert picker.combo.findData(str(tiny_model)) >= 0, "the chat page's picker was refreshed"


def test_import_a_folder_through_the_page(qtbot, main_window, monkeypatch, tiny_model,
                                          tiny_chat_model, tmp_path, warnings):
    for source in (tiny_model, tiny_chat_model):
        target = tmp_path / "lib" / source.stem / source.name
        target.parent.mkdir(parents=True)
        shutil.copyfile(source, target)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(tmp_path))
    page = main_window.models_page
    qtbot.mouseClick(page.import_folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(_paths(main_window)) == 3, timeout=10_000)
    assert warnings == [] and "Added 2 model(s)" in page.status_label.text()


def test_importing_a_garbage_file_shows_a_message_and_adds_nothing(
    qtbot, main_window, monkeypatch, tmp_path, warnings
):
    garbage = tmp_path / "holiday-photos.gguf"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not a model at all")
    before = _paths(main_window)
    _import_through_dialog(qtbot, main_window, monkeypatch, garbage)
    qtbot.waitUntil(lambda: bool(warnings))
    [(title, text)] = warnings
    assert title == "Could not import" and "is not a GGUF model file" in text
    assert _paths(main_window) == before
    assert main_window.isVisible(), "the app keeps running"


def test_load_in_chat_loads_the_model_into_the_chat_page(qtbot, main_window, monkeypatch,
                                                         tiny_chat_model):
    _click_nav(qtbot, main_window, MODELS_PAGE)
    _import_through_dialog(qtbot, main_window, monkeypatch, tiny_chat_model)
    page = main_window.models_page
    assert page.selected_record().path == str(tiny_chat_model)
    with qtbot.waitSignal(main_window.context.bridge.loaded, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda _j, path, *_: path == str(tiny_chat_model)):
        qtbot.mouseClick(page.load_button, Qt.MouseButton.LeftButton)
    assert main_window.pages.currentWidget() is main_window.chat_page
    picker = main_window.chat_page.model_picker
    assert "tiny-chatml" in picker.loaded_label.text()
    assert main_window.context.store.get_setting(LAST_MODEL_KEY) == str(tiny_chat_model)


def test_delete_forgets_the_model_and_deletes_only_hearths_own_file(
    qtbot, main_window, monkeypatch, tiny_model, warnings
):
    own = main_window.context.paths.models / "someone" / "tiny" / "tiny.gguf"
    own.parent.mkdir(parents=True)
    shutil.copyfile(tiny_model, own)
    _import_through_dialog(qtbot, main_window, monkeypatch, own, tiny_model)
    asked = []

    def answer(_parent, record, can_delete_file):
        asked.append((record.path, can_delete_file))
        return True  # "also delete the file" is ticked

    monkeypatch.setattr(models_page_module, "ask_delete", answer)
    page = main_window.models_page
    for path in (own, tiny_model):
        assert page.select_path(str(path))
        qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert asked == [(str(own), True), (str(tiny_model), False)]
    assert not own.exists() and tiny_model.exists()
    assert str(own) not in _paths(main_window) and str(tiny_model) not in _paths(main_window)
    assert warnings == []


def test_find_models_indexes_lm_studio_files_in_place(qtbot, main_window, monkeypatch,
                                                      tiny_model, tmp_path, warnings):
    home = tmp_path / "home"
    found = home / ".lmstudio" / "models" / "pub" / "repo" / "found.gguf"
    found.parent.mkdir(parents=True)
    shutil.copyfile(tiny_model, found)
    monkeypatch.setenv("HOME", str(home))
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    offered = []
    monkeypatch.setattr(models_page_module, "choose_models_to_index",
                        lambda _parent, paths: offered.extend(paths) or paths)
    page = main_window.models_page
    qtbot.mouseClick(page.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: str(found) in _paths(main_window), timeout=10_000)
    assert offered == [found] and warnings == []
    assert page.selected_record().source == "indexed"

    qtbot.waitUntil(page.find_button.isEnabled)
    qtbot.mouseClick(page.find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(warnings))
    assert warnings[0][0] == "Nothing new" and offered == [found]


def test_geometry_last_chat_and_last_model_survive_a_restart(
    qtbot, make_main_window, monkeypatch, tiny_model
):
    first = make_main_window()
    # Only the height is compared: the offscreen screen is 800 px wide, narrower than the
    # window's minimum width, so Qt clamps widths on restore.
    first.resize(first.width(), 677)
    first.chat_page.new_chat()
    wanted = first.chat_page.new_chat()
    first.chat_page.new_chat()
    first.chat_page.open_chat(wanted)
    _import_through_dialog(qtbot, first, monkeypatch, tiny_model)
    with qtbot.waitSignal(first.context.bridge.loaded, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda _j, path, *_: path == str(tiny_model)):
        first.load_in_chat(str(tiny_model))
    first.close()
    assert first.context.closed

    second = make_main_window()
    assert second.chat_page.current_chat_id() == wanted
    assert second.height() == 677
    assert second.context.store.get_setting(GEOMETRY_KEY)
    qtbot.waitUntil(lambda: second.context.bridge.loaded_path == str(tiny_model),
                    timeout=LOAD_TIMEOUT_MS)


@pytest.mark.starter
def test_first_run_with_an_empty_library_installs_and_loads_the_starter(qtbot, make_main_window):
    window = make_main_window(starter=False)
    target = window.context.paths.models / STARTER_RELATIVE_PATH
    assert "starter model" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.context.bridge.loaded_path == str(target),
                    timeout=LOAD_TIMEOUT_MS)
    assert _paths(window) == [str(target)]
    assert not target.with_name(target.name + ".part").exists()


def test_a_setting_typed_just_before_closing_is_saved(qtbot, make_main_window):
    from app.models.store import Store

    window = make_main_window()
    chat_id = window.chat_page.new_chat()
    panel = window.chat_page.settings_panel
    qtbot.keyClicks(panel.system_prompt, "Answer in French.")
    paths = window.context.paths
    window.close()  # at once: well within the prompt's save delay
    store = Store.open(paths.database)
    try:
        assert store.get_chat(chat_id).system_prompt == "Answer in French."
    finally:
        store.close()
