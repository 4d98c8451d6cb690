"""Discover counts a repository's vision projector in each model file's fit while "Also
download the vision projector" is ticked, and marks the repository "vision" (issue 14), against
the local fake Hub with the real huggingface_hub client."""

from __future__ import annotations

import pytest
from fake_hub import FakeHub, FakeRepo, Faults
from PySide6.QtCore import Qt

from app.engine.gguf.info import read_header_bytes
from app.engine.sizing.fit_verdict import quick_fit
from app.engine.sizing.hardware import GpuInfo
from app.engine.sizing.memory_estimate import DEFAULT_HEADROOM, estimate_memory
from app.engine.types import LoadSettings
from app.engine.units import human_bytes
from app.ui.discover import jobs
from app.ui.discover.results import TAGS_COLUMN
from app.ui.main_window import DISCOVER_PAGE

REPO = "pixelorg/Pixel-1B-GGUF"  # no "vision" tag on the Hub: only its files say so
MODEL = "Pixel-1B-Q4_K_M.gguf"
NO_HEADER = "Pixel-1B-Q8_0.gguf"  # its header probe fails: the size rule
PROJECTOR = "mmproj-Pixel-1B-f16.gguf"
VERDICTS = {"full offload", "partial offload", "CPU only", "does not fit"}


@pytest.fixture
def vision_hub(fake_hub: FakeHub, tiny_gguf_bytes: dict[str, bytes]) -> FakeHub:
    small, big = tiny_gguf_bytes["small"], tiny_gguf_bytes["big"]
    fake_hub.add_repo(FakeRepo(REPO, {MODEL: small, NO_HEADER: small, PROJECTOR: big},
                               downloads=50, tags=["gguf", "license:apache-2.0"]))
    fake_hub.faults[NO_HEADER] = Faults(status=500)
    return fake_hub


def _badge(page, name: str) -> tuple[str, str]:
    item = next(i for i in page.details.file_items()
                if i.data(0, Qt.ItemDataRole.UserRole) == name)
    return item.text(2), item.toolTip(2)


def _open_pixel(qtbot, main_window):
    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    qtbot.keyClicks(page.search_box, "pixel")
    qtbot.waitUntil(lambda: page.results_model.rowCount() == 1, timeout=10_000)
    page.results.selectRow(0)
    qtbot.waitUntil(lambda: page.details._details is not None
                    and not page.details._details.loading
                    and {_badge(page, n)[0] for n in (MODEL, NO_HEADER)} <= VERDICTS,
                    timeout=10_000)
    return page


def test_the_projector_counts_in_the_fit_while_its_box_is_ticked(
        qtbot, vision_hub: FakeHub, main_window, tiny_gguf_bytes, monkeypatch) -> None:
    small, big = tiny_gguf_bytes["small"], tiny_gguf_bytes["big"]
    info, shape = read_header_bytes(small, len(small), MODEL)
    settings = LoadSettings(n_ctx=min(8192, info.context_length), n_gpu_layers=0)
    alone = estimate_memory(info, settings, [], ram_available=1 << 40, shape=shape)
    paired = estimate_memory(info, settings, [], ram_available=1 << 40, shape=shape,
                             projector_bytes=len(big))
    # A machine on which the model fits alone but not beside its ~3 MB projector.
    ram = alone.ram_bytes + len(big) // 2
    monkeypatch.setattr(jobs, "machine_memory", lambda: (ram, []))

    main_window.show_page(DISCOVER_PAGE)
    page = main_window.discover_page
    qtbot.keyClicks(page.search_box, "pixel")
    qtbot.waitUntil(lambda: page.results_model.rowCount() == 1, timeout=10_000)
    assert "vision" not in page.results_model.index(0, TAGS_COLUMN).data()
    page.results.selectRow(0)
    qtbot.waitUntil(lambda: page.details._details is not None
                    and not page.details._details.loading
                    and {_badge(page, n)[0] for n in (MODEL, NO_HEADER)} <= VERDICTS,
                    timeout=10_000)

    # Ticked by default: the verdict and figures are the model's with its projector.
    assert page.details.with_projector.isChecked()
    verdict, tip = _badge(page, MODEL)
    assert verdict == "does not fit"
    assert f"needs RAM {human_bytes(paired.ram_bytes)}" in tip
    assert f"Vision projector in RAM: {human_bytes(len(big))}" in tip
    verdict, tip = _badge(page, NO_HEADER)
    rough = quick_fit(len(small), ram, [], projector_bytes=len(big))
    assert "Rough estimate" in tip
    assert f"needs about {human_bytes(rough.need)} with the vision projector" in tip

    # Unticking gives the model-alone verdict at once, without asking the Hub again.
    seen = len(vision_hub.requests)
    page.details.with_projector.setChecked(False)
    verdict, tip = _badge(page, MODEL)
    assert verdict == "CPU only"
    assert f"needs RAM {human_bytes(alone.ram_bytes)}" in tip
    assert "Vision projector" not in tip
    _, tip = _badge(page, NO_HEADER)
    assert f"needs about {human_bytes(quick_fit(len(small), ram, []).need)};" in tip
    assert "projector" not in tip
    page.details.with_projector.setChecked(True)
    assert _badge(page, MODEL)[0] == "does not fit"
    assert len(vision_hub.requests) == seen
    # The projector's own row keeps its size-rule badge either way.
    assert _badge(page, PROJECTOR)[0] in VERDICTS

    # The repository ships a projector: it is marked vision in the details and the results.
    assert "tags: vision" in page.details.subtitle.text()
    assert "vision" in page.results_model.index(0, TAGS_COLUMN).data()

    # Reopened from the cache (after another repository), the box still decides the badge.
    page.search_box.setText("tiny")
    qtbot.waitUntil(lambda: page.results_model.rowCount() == 2, timeout=10_000)
    uncensored = [page.results_model.record(r).repo_id
                  for r in range(2)].index("otherorg/Tiny-Uncensored-7B-GGUF")
    page.results.selectRow(uncensored)
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 2, timeout=10_000)
    assert page.details.with_projector.isHidden()  # no projector there, no vision mark
    assert "vision" not in page.details.subtitle.text()
    assert "vision" not in page.results_model.index(uncensored, TAGS_COLUMN).data()
    page.search_box.setText("pixel")
    qtbot.waitUntil(lambda: page.results_model.rowCount() == 1, timeout=10_000)
    assert "vision" in page.results_model.index(0, TAGS_COLUMN).data()
    seen = len(vision_hub.requests)
    page.results.selectRow(0)
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 3, timeout=10_000)
    assert _badge(page, MODEL)[0] == "does not fit"
    page.details.with_projector.setChecked(False)
    assert _badge(page, MODEL)[0] == "CPU only"
    assert len(vision_hub.requests) == seen


def test_on_a_gpu_the_projector_takes_room_the_layers_would_get(
        qtbot, vision_hub: FakeHub, main_window, tiny_gguf_bytes, monkeypatch) -> None:
    small, big = tiny_gguf_bytes["small"], tiny_gguf_bytes["big"]
    info, shape = read_header_bytes(small, len(small), MODEL)
    layers = info.block_count + 1
    settings = LoadSettings(n_ctx=min(8192, info.context_length), n_gpu_layers=layers)
    roomy = [GpuInfo(0, "GPU", vram_total=1 << 40, vram_free=1 << 40)]
    full = estimate_memory(info, settings, roomy, ram_available=1 << 40, shape=shape)
    # Every layer fits (with Auto's headroom) alone, not beside the projector.
    free = sum(full.vram_bytes) + DEFAULT_HEADROOM + len(big) // 2
    gpu = [GpuInfo(0, "GPU", vram_total=free, vram_free=free)]
    monkeypatch.setattr(jobs, "machine_memory", lambda: (8 << 30, gpu))

    page = _open_pixel(qtbot, main_window)
    verdict, tip = _badge(page, MODEL)
    assert verdict != "full offload"
    assert f"({layers} of {layers} layers on the GPU)" not in tip
    assert "Vision projector in" in tip
    page.details.with_projector.setChecked(False)
    verdict, tip = _badge(page, MODEL)
    assert verdict == "full offload"
    assert f"({layers} of {layers} layers on the GPU)" in tip
