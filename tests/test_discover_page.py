"""Discover against the local fake Hub: search, open a repo, download, load in chat, errors."""

from __future__ import annotations

from pathlib import Path

from fake_hub import FakeHub, Faults
from PySide6.QtCore import Qt

from app.engine.gguf.info import read_header_bytes
from app.engine.hub.downloads import DownloadEvent
from app.engine.sizing.memory_estimate import estimate_memory
from app.engine.types import LoadSettings
from app.engine.units import human_bytes
from app.ui.discover import jobs
from app.ui.main_window import DISCOVER_PAGE

LOAD_TIMEOUT_MS = 60_000
VERDICTS = {"full offload", "partial offload", "CPU only", "does not fit"}


def _search(qtbot, page, text: str, rows: int) -> None:
    qtbot.keyClicks(page.search_box, text)
    qtbot.waitUntil(lambda: page.results_model.rowCount() == rows, timeout=10_000)


def _open(qtbot, page, repo_id: str) -> None:
    ids = [page.results_model.record(r).repo_id for r in range(page.results_model.rowCount())]
    page.results.selectRow(ids.index(repo_id))


def _wait_files(qtbot, page, rows: int) -> None:
    """Until the repository's fetch finished: its rows, every fit badge and the card."""
    def done() -> bool:
        details = page.details._details
        return (details is not None and not details.loading
                and len(page.details.file_items()) == rows
                and all(item.text(2) in VERDICTS for item in page.details.file_items()))
    qtbot.waitUntil(done, timeout=10_000)


def _file_item(page, name: str):
    return next(i for i in page.details.file_items()
                if i.data(0, Qt.ItemDataRole.UserRole) == name)


def test_search_open_download_load_and_chat(qtbot, fake_hub: FakeHub, main_window) -> None:
    window = main_window
    window.show_page(DISCOVER_PAGE)
    page = window.discover_page
    assert window.pages.currentWidget() is page

    _search(qtbot, page, "tiny", rows=2)
    first = page.results_model.record(0)
    assert first.repo_id == "tinyorg/Tiny-1B-GGUF"  # most downloads first
    assert page.results_model.index(0, 0).data() == "Tiny-1B-GGUF"
    assert page.results_model.index(0, 7).data() == "apache-2.0"
    assert "vision" in page.results_model.index(0, 6).data()

    _open(qtbot, page, "tinyorg/Tiny-1B-GGUF")
    _wait_files(qtbot, page, 4)
    groups = [page.details.files.topLevelItem(i).text(0)
              for i in range(page.details.files.topLevelItemCount())]
    assert {"Q4_K_M", "Q8_0", "F16", "Vision projector (mmproj)"} == set(groups)
    assert all(item.text(2) in VERDICTS for item in page.details.file_items())
    # Models get the estimator's figures from their header, fetched by a Range request;
    # the projector keeps the rough size rule.
    assert "Estimated at" in _file_item(page, "Tiny-1B-Q4_K_M.gguf").toolTip(2)
    assert fake_hub.ranges("Tiny-1B-Q4_K_M.gguf")[0].startswith("bytes=0-")
    assert "needs about" in _file_item(page, "mmproj-Tiny-1B-f16.gguf").toolTip(2)
    assert page.details.with_projector.isVisibleTo(page)
    assert "Tiny 1B" in page.details.card.toPlainText()

    events: list[DownloadEvent] = []
    page.downloads.event.connect(events.append)
    fake_hub.faults["Tiny-1B-Q8_0.gguf"] = Faults(throttle_bps=2_000_000)
    item = _file_item(page, "Tiny-1B-Q8_0.gguf")
    qtbot.mouseClick(page.details.download_button(item), Qt.MouseButton.LeftButton)

    store = window.context.store
    model_path = Path(window.context.paths.models, "tinyorg", "Tiny-1B-GGUF",
                      "Tiny-1B-Q8_0.gguf")
    qtbot.waitUntil(lambda: any(r.path == str(model_path) for r in store.list_model_files()),
                    timeout=30_000)
    qtbot.waitUntil(lambda: any(e.kind == "done" and e.path == str(model_path) for e in events),
                    timeout=10_000)
    assert any(e.kind == "progress" and 0 < e.done < e.total for e in events)
    # The projector came along, is on disk, and is not listed as a model on its own.
    projector = model_path.with_name("mmproj-Tiny-1B-f16.gguf")
    qtbot.waitUntil(projector.exists, timeout=10_000)
    assert all("mmproj" not in r.path for r in store.list_model_files())
    panel = page.downloads_panel.model
    row = panel.rows[panel.row_of("tinyorg/Tiny-1B-GGUF/Tiny-1B-Q8_0.gguf")]
    assert row.status == "Done" and row.done == row.total
    # The file just downloaded is no longer offered for download.
    button = page.details.download_button(item)
    assert button.text() == "Downloaded" and not button.isEnabled()
    # My Models and the chat's picker were refreshed through the window's wiring.
    listed = window.models_page.table_model
    qtbot.waitUntil(lambda: listed.row_where(lambda r: r.path == str(model_path)) >= 0)

    bridge = window.context.bridge
    with qtbot.waitSignal(bridge.loaded, timeout=LOAD_TIMEOUT_MS,
                          check_params_cb=lambda _j, path, *_: path == str(model_path)):
        window.load_in_chat(str(model_path))
    chat = window.chat_page
    with qtbot.waitSignal(bridge.done, timeout=LOAD_TIMEOUT_MS) as reply:
        chat.composer.input.setPlainText("Hello")
        qtbot.keyClick(chat.composer.input, Qt.Key.Key_Return)
    assert isinstance(reply.args[1], str)


def test_pause_resume_and_cancel_from_the_panel(qtbot, fake_hub: FakeHub, main_window) -> None:
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    _search(qtbot, page, "tiny", rows=2)
    _open(qtbot, page, "tinyorg/Tiny-1B-GGUF")
    _wait_files(qtbot, page, 4)
    fake_hub.faults["Tiny-1B-Q8_0.gguf"] = Faults(throttle_bps=400_000)
    page.details.with_projector.setChecked(False)
    qtbot.mouseClick(page.details.download_button(_file_item(page, "Tiny-1B-Q8_0.gguf")),
                     Qt.MouseButton.LeftButton)
    key = "tinyorg/Tiny-1B-GGUF/Tiny-1B-Q8_0.gguf"
    panel = page.downloads_panel
    qtbot.waitUntil(lambda: panel.model.row_of(key) >= 0
                    and panel.model.rows[panel.model.row_of(key)].done > 0, timeout=10_000)
    row = lambda: panel.model.rows[panel.model.row_of(key)]  # noqa: E731 - re-read each time
    panel.select_key(key)
    assert panel.pause_button.isEnabled() and not panel.resume_button.isEnabled()
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row().kind == "paused", timeout=10_000)
    assert panel.resume_button.isEnabled()
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row().kind == "progress", timeout=10_000)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row().kind == "cancelled", timeout=10_000)
    dest = Path(main_window.context.paths.models, "tinyorg", "Tiny-1B-GGUF", "Tiny-1B-Q8_0.gguf")
    assert not dest.exists() and not dest.with_name(dest.name + ".part").exists()


def test_gated_download_and_missing_repo_show_messages(qtbot, fake_hub: FakeHub,
                                                       main_window) -> None:
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    _search(qtbot, page, "GGUF", rows=3)
    _open(qtbot, page, "gated/Locked-GGUF")
    _wait_files(qtbot, page, 1)
    assert "could not be loaded" in page.details.card.toPlainText()
    qtbot.mouseClick(page.details.download_button(page.details.file_items()[0]),
                     Qt.MouseButton.LeftButton)
    qtbot.waitUntil(page.error_banner.isVisible, timeout=10_000)
    assert "accept its licence" in page.error_banner.text()
    assert "Traceback" not in page.error_banner.text()

    del fake_hub.repos["otherorg/Tiny-Uncensored-7B-GGUF"]
    page.error_banner.hide()
    _open(qtbot, page, "otherorg/Tiny-Uncensored-7B-GGUF")
    qtbot.waitUntil(page.error_banner.isVisible, timeout=10_000)
    assert "was not found on the Hub" in page.error_banner.text()


def test_offline_search_shows_a_message(qtbot, fake_hub: FakeHub, main_window,
                                        monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    qtbot.keyClicks(page.search_box, "tiny")
    qtbot.waitUntil(page.error_banner.isVisible, timeout=10_000)
    assert "offline" in page.error_banner.text()
    assert page.results_model.rowCount() == 0


def test_badges_come_from_the_memory_estimate(qtbot, fake_hub: FakeHub, main_window,
                                              tiny_gguf_bytes, monkeypatch) -> None:
    gib = 1 << 30
    monkeypatch.setattr(jobs, "machine_memory", lambda: (8 * gib, []))
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    _search(qtbot, page, "tiny", rows=2)
    _open(qtbot, page, "tinyorg/Tiny-1B-GGUF")
    _wait_files(qtbot, page, 4)
    small = tiny_gguf_bytes["small"]
    info, shape = read_header_bytes(small, len(small), "Tiny-1B-Q4_K_M.gguf")
    settings = LoadSettings(n_ctx=min(8192, info.context_length), n_gpu_layers=0)
    # The repository ships a projector and its box is ticked: the estimate counts it.
    est = estimate_memory(info, settings, [], ram_available=8 * gib, shape=shape,
                          projector_bytes=len(small))
    item = _file_item(page, "Tiny-1B-Q4_K_M.gguf")
    assert item.text(2) == "CPU only"
    assert f"needs RAM {human_bytes(est.ram_bytes)}" in item.toolTip(2)
    assert "rough" not in item.toolTip(2).lower()

    # A file whose header cannot be fetched falls back to the size rule.
    fake_hub.faults["tiny-7b-Q2_K.gguf"] = Faults(status=500)
    files = fake_hub.repos["otherorg/Tiny-Uncensored-7B-GGUF"].files  # header in part 1
    files["tiny-7b-IQ4_XS-00001-of-00002.gguf"] = small[:200_000]
    files["tiny-7b-IQ4_XS-00002-of-00002.gguf"] = small[200_000:]
    _open(qtbot, page, "otherorg/Tiny-Uncensored-7B-GGUF")
    _wait_files(qtbot, page, 2)
    assert "Rough estimate" in _file_item(page, "tiny-7b-Q2_K.gguf").toolTip(2)
    # A split file's badge comes from its first part's header.
    split = _file_item(page, "tiny-7b-IQ4_XS-00001-of-00002.gguf")
    assert "Estimated at" in split.toolTip(2)


def test_closing_the_window_pauses_and_the_next_launch_resumes(qtbot, fake_hub: FakeHub,
                                                                make_main_window) -> None:
    first = make_main_window()
    first.show_page(DISCOVER_PAGE)
    page = first.discover_page
    _search(qtbot, page, "tiny", rows=2)
    _open(qtbot, page, "tinyorg/Tiny-1B-GGUF")
    _wait_files(qtbot, page, 4)
    fake_hub.faults["Tiny-1B-Q8_0.gguf"] = Faults(throttle_bps=400_000)
    page.details.with_projector.setChecked(False)
    qtbot.mouseClick(page.details.download_button(_file_item(page, "Tiny-1B-Q8_0.gguf")),
                     Qt.MouseButton.LeftButton)
    key = "tinyorg/Tiny-1B-GGUF/Tiny-1B-Q8_0.gguf"
    model = page.downloads_panel.model
    qtbot.waitUntil(lambda: model.row_of(key) >= 0 and model.rows[model.row_of(key)].done > 0,
                    timeout=10_000)
    first.close()

    fake_hub.faults["Tiny-1B-Q8_0.gguf"] = Faults()
    second = make_main_window()
    second.show_page(DISCOVER_PAGE)
    panel = second.discover_page.downloads_panel
    assert panel.model.row_of(key) >= 0
    row = panel.model.rows[panel.model.row_of(key)]
    assert row.kind == "paused" and row.done > 0
    panel.select_key(key)
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    dest = Path(second.context.paths.models, "tinyorg", "Tiny-1B-GGUF", "Tiny-1B-Q8_0.gguf")
    qtbot.waitUntil(lambda: panel.model.rows[panel.model.row_of(key)].kind == "done",
                    timeout=20_000)
    assert dest.exists()
    assert fake_hub.ranges("Tiny-1B-Q8_0.gguf")[-1] not in (None, "bytes=0-")


def test_hub_token_dialog_then_gated_download_succeeds(qtbot, fake_hub: FakeHub, main_window,
                                                       caplog) -> None:
    from app.engine.paths import data_paths

    secret = "hf_fake_secret_token_123"
    fake_hub.repos["gated/Locked-GGUF"].token = secret
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    _search(qtbot, page, "GGUF", rows=3)
    _open(qtbot, page, "gated/Locked-GGUF")
    _wait_files(qtbot, page, 1)
    qtbot.mouseClick(page.details.download_button(page.details.file_items()[0]),
                     Qt.MouseButton.LeftButton)
    key = "gated/Locked-GGUF/locked-Q4_0.gguf"
    model = page.downloads_panel.model
    qtbot.waitUntil(lambda: model.row_of(key) >= 0 and model.rows[model.row_of(key)].kind
                    == "failed", timeout=10_000)

    qtbot.mouseClick(page.token_button, Qt.MouseButton.LeftButton)
    dialog = page.token_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.state.text() == "Token: not set", timeout=10_000)
    assert not dialog.remove_button.isEnabled() and not dialog.save_button.isEnabled()
    qtbot.keyClicks(dialog.edit, secret)
    assert dialog.edit.echoMode() == dialog.edit.EchoMode.Password
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.state.text().startswith("Token: set"), timeout=10_000)
    assert secret not in dialog.state.text() and dialog.edit.text() == ""
    stored = data_paths().root / "hf_token"
    assert stored.read_text() == secret and stored.stat().st_mode & 0o777 == 0o600

    # Resume of the download that failed uses the new token (the bridge no longer keeps the
    # token it was created with).
    page.downloads_panel.select_key(key)
    qtbot.mouseClick(page.downloads_panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.rows[model.row_of(key)].kind == "done", timeout=20_000)
    assert Path(main_window.context.paths.models, "gated", "Locked-GGUF",
                "locked-Q4_0.gguf").exists()

    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.state.text() == "Token: not set", timeout=10_000)
    assert not stored.exists()
    assert secret not in caplog.text


def _info_requests(fake_hub: FakeHub) -> list[str]:
    """The repositories whose model info was asked for, in order (search is not counted)."""
    from urllib.parse import unquote

    paths = [unquote(s.path) for s in list(fake_hub.requests)]
    return ["/".join(p.split("/")[3:5]) for p in paths if p.startswith("/api/models/")]


def test_arrowing_through_results_fetches_only_where_it_stops(qtbot, fake_hub: FakeHub,
                                                               main_window, monkeypatch) -> None:
    probes: list[int] = []
    monkeypatch.setattr(jobs, "probe_hardware", lambda *a: probes.append(1), raising=False)
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    _search(qtbot, page, "GGUF", rows=3)
    ids = [page.results_model.record(r).repo_id for r in range(3)]
    before = len(_info_requests(fake_hub))
    for row in (0, 1, 2, 0, 1):  # arrowing up and down, faster than the debounce
        page.results.selectRow(row)
    qtbot.waitUntil(lambda: page.details._details is not None
                    and page.details._details.repo_id == ids[1]
                    and not page.details._details.loading, timeout=10_000)
    assert page.details.title.text() == ids[1]
    assert set(_info_requests(fake_hub)[before:]) == {ids[1]}  # no fetch for the rows passed
    assert not probes  # no NVML / llama.cpp probe per repository

    # Going back to a repository seen a moment ago shows it at once, without asking the Hub.
    page.results.selectRow(0)
    qtbot.waitUntil(lambda: page.details._details is not None
                    and page.details._details.repo_id == ids[0]
                    and not page.details._details.loading, timeout=10_000)
    seen = len(fake_hub.requests)
    page.results.selectRow(1)
    assert page.details._details is not None and page.details._details.repo_id == ids[1]
    assert page.details.file_items()
    qtbot.wait(2 * page._details_timer.interval())
    assert len(fake_hub.requests) == seen


def test_fetch_details_stops_at_its_next_stage(fake_hub: FakeHub) -> None:
    job = jobs.fetch_details("tinyorg/Tiny-1B-GGUF")
    next(job)  # token read
    next(job)  # file list fetched
    listed = len(fake_hub.requests)
    job.close()  # what a quit() worker does to a job the user left
    assert len(fake_hub.requests) == listed  # no headers, no README
    assert not fake_hub.ranges("Tiny-1B-Q4_K_M.gguf")


def test_a_refused_target_gets_a_failed_row_and_a_failed_fetch_clears_the_status(
        qtbot, fake_hub: FakeHub, main_window) -> None:
    from dataclasses import replace

    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    panel = page.downloads_panel
    (good,), token = jobs.fetch_targets("tinyorg/Tiny-1B-GGUF", ["Tiny-1B-Q4_K_M.gguf"])
    bad = replace(good, filename="../escape.gguf")
    page._targets_ready(([good, bad], token))  # the manager refuses the second one
    bad_row = panel.model.rows[panel.model.row_of("tinyorg/Tiny-1B-GGUF/../escape.gguf")]
    assert bad_row.kind == "failed" and "escape" in bad_row.message and not bad_row.active
    assert "escape" in page.error_banner.text() and page.error_banner.isVisibleTo(page)
    panel.select_key(bad_row.key)
    assert not panel.pause_button.isEnabled()
    good_key = "tinyorg/Tiny-1B-GGUF/Tiny-1B-Q4_K_M.gguf"
    qtbot.waitUntil(lambda: panel.model.rows[panel.model.row_of(good_key)].kind == "done",
                    timeout=20_000)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert panel.model.rows[panel.model.row_of(bad_row.key)].kind == "cancelled"

    page.error_banner.hide()
    page.download("tinyorg/Tiny-1B-GGUF", ["no-such-file.gguf"])
    assert page.status.text().startswith("Preparing")
    qtbot.waitUntil(page.error_banner.isVisible, timeout=10_000)
    assert "Preparing" not in page.status.text()
    assert panel.model.row_of("tinyorg/Tiny-1B-GGUF/no-such-file.gguf") < 0


def test_a_download_that_failed_earlier_shows_failed_and_resume_errors_show(
        qtbot, fake_hub: FakeHub, make_main_window, monkeypatch) -> None:
    from app.engine.hub.downloads import DownloadRecord, target_path
    from app.ui.discover import page as discover_page

    first = make_main_window()
    (target,), _ = jobs.fetch_targets("tinyorg/Tiny-1B-GGUF", ["Tiny-1B-Q8_0.gguf"])
    key = "tinyorg/Tiny-1B-GGUF/Tiny-1B-Q8_0.gguf"
    dest = target_path(Path(first.context.paths.models), target.repo_id, target.filename)
    first.context.store.save_download(DownloadRecord(
        key, target.repo_id, target.filename, target.revision, target.url, target.size,
        target.sha256, str(dest), status="failed", error="the checksum did not match"))
    first.close()

    second = make_main_window()
    second.show_page(DISCOVER_PAGE)
    page = second.discover_page
    panel = page.downloads_panel
    row = panel.model.rows[panel.model.row_of(key)]
    assert row.kind == "failed" and row.status == "Failed: the checksum did not match"

    def broken_token() -> str:
        raise OSError("keyring locked")

    monkeypatch.setattr(discover_page, "get_token", broken_token)
    panel.select_key(key)
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(page.error_banner.isVisible, timeout=10_000)
    assert "could not be resumed" in page.error_banner.text()
    assert "keyring locked" in page.error_banner.text()


def test_files_already_on_disk_are_not_offered_for_download(qtbot, fake_hub: FakeHub,
                                                             main_window, tiny_gguf_bytes) -> None:
    folder = Path(main_window.context.paths.models, "tinyorg", "Tiny-1B-GGUF")
    folder.mkdir(parents=True)
    (folder / "Tiny-1B-Q4_K_M.gguf").write_bytes(tiny_gguf_bytes["small"])
    (folder / "Tiny-1B-F16.gguf").write_bytes(tiny_gguf_bytes["small"][:1000])  # cut short
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    _search(qtbot, page, "tiny", rows=2)
    _open(qtbot, page, "tinyorg/Tiny-1B-GGUF")
    _wait_files(qtbot, page, 4)
    have = page.details.download_button(_file_item(page, "Tiny-1B-Q4_K_M.gguf"))
    assert have.text() == "Downloaded" and not have.isEnabled()
    for name in ("Tiny-1B-F16.gguf", "Tiny-1B-Q8_0.gguf"):
        button = page.details.download_button(_file_item(page, name))
        assert button.text() == "Download" and button.isEnabled()
