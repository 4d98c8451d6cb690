"""The Developer page runs the real server (port 0) on a real pool; requests are real httpx."""

from __future__ import annotations

import shlex
import socket
import stat
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from app.engine.gguf.info import read_model_info
from app.engine.serving.pool import ModelPool
from app.engine.units import human_bytes
from app.services.api_keys import load_keys
from app.ui.developer.page import SETTING_AUTOSTART, SETTING_PORT, DeveloperPage
from app.ui.developer.server_control import ServerState, network_urls
from app.ui.developer.snippets import ENDPOINTS, curl_snippet, python_snippet
from app.ui.loaded_models import LoadedModelsStrip
from app.ui.pool_watcher import PoolWatcher

CHAT = next(e for e in ENDPOINTS if e.path == "/v1/chat/completions")



@pytest.fixture
def model_id(hearth_store, pool: ModelPool, tiny_chat_model: Path) -> str:
    """The tiny chat model, in the library and loaded in the pool; its API id."""
    from app.services.serving import ModelCatalog

    hearth_store.add_model_file(read_model_info(tiny_chat_model))
    catalog = ModelCatalog(hearth_store)
    servable = catalog.find(str(tiny_chat_model))
    assert servable is not None
    pool.load(servable.id, servable.path, catalog.load_settings(servable), kind=servable.kind)
    return servable.id


@pytest.fixture
def make_page(qtbot, hearth_store, hearth_home: Path, pool: ModelPool):
    pages: list[DeveloperPage] = []

    def make() -> DeveloperPage:
        page = DeveloperPage(hearth_store, pool, data_root=hearth_home)
        qtbot.addWidget(page)
        page.resize(1200, 900)
        page.show()
        qtbot.waitUntil(lambda: page.keys_panel.is_loaded
                        or "Could not read" in page.keys_panel.where_label.text())
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.shutdown()


def _start(qtbot, page: DeveloperPage, port: int = 0) -> str:
    page.port_spin.setValue(port)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.control.state is ServerState.RUNNING, timeout=15_000)
    assert page.control.url is not None
    return page.control.url


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_start_serves_logs_the_request_and_stop_frees_the_port(qtbot, make_page, model_id):
    page = make_page()
    url = _start(qtbot, page)
    assert url in page.status_label.text() and page.start_button.text() == "Stop server"
    reply = httpx.post(f"{url}/v1/chat/completions", timeout=60, json={
        "model": model_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    assert reply.status_code == 200
    qtbot.waitUntil(lambda: page.log_model.rowCount() >= 1, timeout=5000)
    row = [page.log_model.index(0, c).data() for c in range(page.log_model.columnCount())]
    assert row[1] == "POST /v1/chat/completions" and row[2] == model_id and row[5] == "200"
    assert "→" in row[3]  # prompt → completion tokens
    assert f"{model_id}" in page.slots_label.text() and "busy" in page.slots_label.text()

    port = page.control.port
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.control.state is ServerState.STOPPED, timeout=15_000)
    assert page.status_label.text() == "Stopped"
    assert _port_free(port)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_busy_port_shows_the_message_not_a_traceback(qtbot, make_page):
    page = make_page()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        page.port_spin.setValue(port)
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "already in use" in page.message_label.text(), timeout=10_000)
    assert f"Port {port}" in page.message_label.text()
    assert page.control.state is ServerState.STOPPED and page.start_button.isEnabled()


def test_network_without_a_key_is_refused_with_the_warning(qtbot, make_page):
    page = make_page()
    assert not page.network_warning.isVisible()
    page.network_box.setChecked(True)
    assert page.network_warning.isVisible() and "0.0.0.0" in page.network_warning.text()
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert "needs an API key" in page.message_label.text()
    assert page.control.state is ServerState.STOPPED and page.control.url is None

    key = page.keys_panel.generate()  # with a key it serves, and every request needs it
    url = _start(qtbot, page)
    assert page.control.config.bind_host == "0.0.0.0"
    for lan_url in network_urls(page.control.port)[:2]:  # none on a machine without a LAN
        assert lan_url in page.status_label.text()
    assert httpx.get(f"{url}/v1/models").status_code == 401
    assert httpx.get(f"{url}/v1/models", headers={"x-api-key": key}).status_code == 200
    assert not page.network_box.isEnabled()  # no rebinding under a running server


def test_a_required_key_is_enforced_and_removing_it_revokes_it(qtbot, make_page, hearth_home):
    page = make_page()
    first = page.keys_panel.generate()
    second = page.keys_panel.generate()
    page.keys_panel.require_box.setChecked(True)
    url = _start(qtbot, page)
    assert httpx.get(f"{url}/v1/models").status_code == 401
    auth = {"Authorization": f"Bearer {first}"}
    assert httpx.get(f"{url}/v1/models", headers=auth).status_code == 200
    assert httpx.get(f"{url}/v1/models", headers={"x-api-key": second}).status_code == 200
    # The keys are secrets: kept out of the settings table, in a file only the user can read.
    qtbot.waitUntil(lambda: load_keys(hearth_home) == [first, second])
    key_file = next(hearth_home.glob("*api_keys*"))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first not in page.keys_panel.list.item(0).text()  # shown shortened

    page.keys_panel.list.setCurrentRow(0)
    qtbot.mouseClick(page.keys_panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.control.state is ServerState.RUNNING, timeout=15_000)
    url = page.control.url
    assert httpx.get(f"{url}/v1/models", headers=auth).status_code == 401
    assert httpx.get(f"{url}/v1/models", headers={"x-api-key": second}).status_code == 200


def test_damaged_stored_keys_are_reported_and_never_saved_over(qtbot, make_page, hearth_home):
    stored = hearth_home / "server_api_keys.json"
    stored.write_text('["hearth-kept", <b>broken</b>', encoding="utf-8")
    stored.chmod(0o644)
    page = make_page()
    panel = page.keys_panel
    qtbot.waitUntil(lambda: "Could not read" in panel.where_label.text(), timeout=5_000)
    assert panel.where_label.textFormat() == Qt.TextFormat.PlainText
    assert not panel.generate_button.isEnabled()  # a new key would replace the unread ones
    assert stored.read_text(encoding="utf-8") == '["hearth-kept", <b>broken</b>'


def test_a_secret_file_is_narrowed_to_the_user_before_the_secret_is_written(hearth_home):
    from app.services.api_keys import save_keys

    stored = hearth_home / "server_api_keys.json"
    stored.write_text("[]", encoding="utf-8")
    stored.chmod(0o644)  # left readable by an older version or by hand
    modes = []
    real_fdopen = __import__("os").fdopen

    def watching(fd, *args, **kwargs):
        modes.append(stat.S_IMODE(__import__("os").fstat(fd).st_mode))
        return real_fdopen(fd, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("os.fdopen", watching)
        save_keys(["hearth-new"], hearth_home)
    assert modes == [0o600] and load_keys(hearth_home) == ["hearth-new"]


def test_snippets_carry_url_model_and_key(qtbot, make_page, model_id):
    page = make_page()
    key = page.keys_panel.generate()
    url = _start(qtbot, page)
    qtbot.waitUntil(lambda: page.endpoints.model_combo.currentText() == model_id)
    qtbot.mouseClick(page.endpoints.copy_buttons[(CHAT.path, "curl")], Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert f"{url}/v1/chat/completions" in copied and model_id in copied and key in copied
    assert page.endpoints.preview.toPlainText() == copied
    qtbot.mouseClick(page.endpoints.copy_buttons[(CHAT.path, "Python")],
                     Qt.MouseButton.LeftButton)
    python = QGuiApplication.clipboard().text()
    assert f"{url}/v1" in python and repr(model_id) in python and repr(key) in python
    compile(python, "snippet", "exec")

    # A hostile model id stays one shell word inside the JSON body.
    hostile = "x'; rm -rf ~; echo '"
    words = shlex.split(curl_snippet(CHAT, url, hostile, key))
    assert "rm" not in words and any(hostile in w for w in words)
    compile(python_snippet(CHAT, url, hostile, key), "snippet", "exec")


def test_start_with_hearth_setting_starts_the_server(qtbot, make_page, hearth_store):
    hearth_store.set_setting(SETTING_AUTOSTART, True)
    hearth_store.set_setting(SETTING_PORT, 0)
    page = make_page()
    assert page.autostart_box.isChecked() and page.port_spin.value() == 0
    page.start_with_app()
    qtbot.waitUntil(lambda: page.control.state is ServerState.RUNNING, timeout=15_000)
    assert httpx.get(f"{page.control.url}/health").status_code == 200


def test_strip_lists_a_loaded_model_and_unload_removes_it(qtbot, pool, model_id):
    strip = LoadedModelsStrip(PoolWatcher(pool))
    qtbot.addWidget(strip)
    strip.show()
    qtbot.waitUntil(lambda: model_id in strip.chips)
    chip = strip.chips[model_id]
    served = pool.models()[0]
    assert chip.name_label.text() == "tiny-chatml"
    assert human_bytes(served.memory_bytes) in chip.details_label.text()
    assert f"0/{served.parallel} busy" in chip.details_label.text()
    assert not strip.empty_label.isVisible()
    qtbot.mouseClick(chip.unload_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not strip.chips, timeout=10_000)
    assert pool.models() == [] and strip.empty_label.isVisible()
    strip.shutdown()


def test_the_pool_watcher_signals_only_what_a_person_would_see_change(qtbot, pool, model_id):
    watcher = PoolWatcher(pool)
    seen: list[list] = []
    watcher.changed.connect(seen.append)
    watcher.poll()
    watcher.poll()
    assert seen == []  # idle time moved on, nothing shown did: no signal, no label re-set
    pool.unload(model_id)
    watcher.poll()
    assert seen == [[]]
    watcher.stop()


@pytest.mark.starter
def test_window_starts_the_server_with_hearth_and_frees_the_port_on_close(
        qtbot, hearth_store, make_main_window):
    from app.ui.main_window import DEVELOPER_PAGE

    hearth_store.set_setting(SETTING_AUTOSTART, True)
    hearth_store.set_setting(SETTING_PORT, 0)
    window = make_main_window()
    assert window.nav.item(DEVELOPER_PAGE).text() == "Developer"
    page = window.developer_page
    qtbot.waitUntil(lambda: page.control.state is ServerState.RUNNING, timeout=15_000)
    port = page.control.port
    models = httpx.get(f"{page.control.url}/v1/models").json()["data"]
    assert "starter" in [m["id"] for m in models]
    qtbot.waitUntil(lambda: window.context.pool.models() != [], timeout=30_000)
    reply = httpx.post(f"{page.control.url}/v1/chat/completions", timeout=60, json={
        "model": "starter", "max_tokens": 2, "messages": [{"role": "user", "content": "Hi"}]})
    assert reply.json()["model"] == "starter"  # the chat's copy answers under its API id
    assert len(window.context.pool.models()) == 1
    # The chat's model is in the shared pool, so the strip above the pages shows it.
    qtbot.waitUntil(lambda: len(window.loaded_models.chips) == 1, timeout=15_000)
    chip = next(iter(window.loaded_models.chips.values()))
    served = window.context.pool.models()[0]
    assert chip.name_label.text() == "Gemma 3 270m"
    assert human_bytes(served.memory_bytes) in chip.details_label.text()
    assert "in Chat" in chip.details_label.text()
    # The page names the chat's model by its API id, in the slots and in the snippets.
    window.show_page(DEVELOPER_PAGE)
    qtbot.waitUntil(lambda: "(starter): 0 of" in page.slots_label.text())
    assert page.endpoints.model_combo.currentText() == "starter"
    # Unloading the chat's model goes through the chat (as its Eject does), so it knows.
    qtbot.mouseClick(chip.unload_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.loaded_models.chips, timeout=15_000)
    assert window.context.pool.models() == []
    qtbot.waitUntil(lambda: not window.chat_page.model_picker.eject_button.isEnabled(),
                    timeout=5_000)  # the chat hears of it through the bridge, a moment later
    window.close()  # the fixture also fails the test if a thread or widget outlives the window
    assert _port_free(port)


def test_the_log_view_is_bounded_and_shows_the_newest_first(qapp):
    from app.server.request_log import RequestLog, RequestLogEntry
    from app.ui.developer.request_log_model import RequestLogModel

    log = RequestLog(size=100)
    model = RequestLogModel(log, limit=3)
    for n in range(2):
        log.add(RequestLogEntry(time=n, method="GET", path=f"/p{n}", status=200))
    model.refresh()
    for n in range(2, 6):
        log.add(RequestLogEntry(time=n, method="GET", path=f"/p{n}", status=200))
    model.refresh()
    assert [model.index(r, 1).data() for r in range(model.rowCount())] == [
        "GET /p5", "GET /p4", "GET /p3"]
