"""The Hardware page: what it shows without a GPU, with a fake one, and its live charts."""

from __future__ import annotations

import time

import pytest
from test_hardware import FakeNVML

from app.ui.hardware.page import HardwarePage

GIB = 1 << 30


@pytest.fixture
def make_page(qtbot):
    pages: list[HardwarePage] = []

    def make(**kwargs) -> HardwarePage:
        page = HardwarePage(**kwargs)
        qtbot.addWidget(page)
        pages.append(page)
        page.show()
        return page

    yield make
    for page in pages:
        assert page.shutdown()


def test_without_a_gpu_shows_cpu_ram_and_what_nvml_could_not_read(qtbot, make_page) -> None:
    page = make_page(interval=0.05, nvml=FakeNVML([], fail_on="nvmlInit"))
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
    assert page.cpu_label.text() not in ("", "Probing…")
    assert "physical" in page.cores_label.text()
    assert "GB total" in page.ram_label.text()
    assert "NVML could not start" in page.gpu_label.text()
    assert page.gpu_charts == []
    assert page.offload_label.text().startswith(("yes", "no"))


def test_real_machine_reports_problems_instead_of_failing(qtbot, make_page) -> None:
    page = make_page(interval=0.05)
    qtbot.waitUntil(lambda: page.snapshot is not None, timeout=10_000)
    if not page.snapshot.gpus:
        assert page.snapshot.problems
        assert "NVIDIA GPUs" in page.gpu_label.text()


def test_charts_receive_samples(qtbot, make_page) -> None:
    page = make_page(interval=0.02)
    qtbot.waitUntil(lambda: page.cpu_chart.point_count >= 3, timeout=5000)
    assert page.ram_chart.point_count >= 3
    assert 0 < page.ram_chart.latest <= page.ram_chart.maximum


def test_one_fake_gpu_gets_vram_and_utilisation_charts(qtbot, make_page) -> None:
    page = make_page(interval=0.02, nvml=FakeNVML([("RTX Fake 24G", 24 * GIB, 2 * GIB)]))
    qtbot.waitUntil(lambda: len(page.gpu_charts) == 1, timeout=5000)
    assert "RTX Fake 24G" in page.gpu_label.text()
    vram, util = page.gpu_charts[0]
    qtbot.waitUntil(lambda: vram.point_count >= 2, timeout=5000)
    assert vram.latest == 2 * GIB
    assert util.latest == 37


def test_main_window_has_a_hardware_page_that_updates_during_a_reply(
        qtbot, make_main_window, monkeypatch) -> None:
    from app.ui.hardware import page as hardware_page
    from app.ui.main_window import HARDWARE_PAGE

    monkeypatch.setattr(hardware_page, "SAMPLE_INTERVAL", 0.02)
    main_window = make_main_window()

    assert main_window.nav.item(HARDWARE_PAGE).text() == "Hardware"
    main_window.show_page(HARDWARE_PAGE)
    assert main_window.pages.currentWidget() is main_window.hardware_page
    chart = main_window.hardware_page.cpu_chart
    qtbot.waitUntil(lambda: chart.point_count >= 1, timeout=5000)
    bridge = main_window.context.bridge
    qtbot.waitUntil(lambda: bridge.loaded_info is not None, timeout=60_000)
    from app.engine.types import ChatMessage, Sampling

    counts: list[tuple[float, int]] = []  # (time, points) at each streamed chunk
    done: list[object] = []
    bridge.tokens.connect(lambda *_: counts.append((time.monotonic(), chart.point_count)))
    bridge.done.connect(lambda *args: done.append(args))
    bridge.chat([ChatMessage("user", "Once upon a time, in a lighthouse by the sea,")],
                Sampling(max_tokens=300, temperature=0.9, seed=7))
    qtbot.waitUntil(lambda: bool(done), timeout=60_000)
    assert counts, "the reply streamed no text"
    streamed_for = counts[-1][0] - counts[0][0]
    print(f"streamed for {streamed_for:.1f} s, points {counts[0][1]} -> {counts[-1][1]}")
    if streamed_for >= 0.06:  # sampled every 20 ms, so the stream must have added points
        assert counts[-1][1] > counts[0][1]
