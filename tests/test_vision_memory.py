"""A vision model's projector counts in the fit estimate, the load dialog and the loaded-memory
figure: by its file size, in RAM on the CPU and in VRAM when layers are offloaded."""

from __future__ import annotations

import pytest

from app.engine.gguf.info import read_model_info
from app.engine.serving.pool import ModelPool
from app.engine.sizing.hardware import GpuInfo
from app.engine.sizing.memory_estimate import DEFAULT_HEADROOM, estimate_memory
from app.engine.types import LoadSettings
from app.services.projectors import choose_projector
from app.ui.load_settings_dialog import LoadSettingsDialog

GIB = 1 << 30


@pytest.fixture
def vision(hearth_store, tiny_vision_model):
    info = read_model_info(tiny_vision_model.model)
    hearth_store.add_model_file(info)
    return info, tiny_vision_model.mmproj.stat().st_size


def test_the_estimate_grows_by_the_projector_in_ram_or_on_the_gpu(vision):
    info, size = vision
    settings = LoadSettings(n_ctx=256, n_gpu_layers=0)
    text = estimate_memory(info, settings, [], ram_available=64 * GIB)
    with_images = estimate_memory(info, settings, [], ram_available=64 * GIB,
                                  projector_bytes=size)
    assert with_images.ram_bytes - text.ram_bytes == size > 100_000
    assert ("Vision projector in RAM", size) in with_images.breakdown()

    gpu = [GpuInfo(0, "GPU", vram_total=8 * GIB, vram_free=8 * GIB)]
    full = LoadSettings(n_ctx=256, n_gpu_layers=-1)
    text = estimate_memory(info, full, gpu, ram_available=64 * GIB)
    with_images = estimate_memory(info, full, gpu, ram_available=64 * GIB, projector_bytes=size)
    assert sum(with_images.vram_bytes) - sum(text.vram_bytes) == size
    assert with_images.ram_bytes == text.ram_bytes
    rows = dict(with_images.breakdown())
    assert rows["Vision projector in VRAM"] == size
    assert rows["VRAM total"] == sum(with_images.vram_bytes)


def test_a_projector_can_tip_the_verdict_to_does_not_fit(vision):
    info, size = vision
    settings = LoadSettings(n_ctx=256)
    text = estimate_memory(info, settings, [], ram_available=64 * GIB)
    room = text.ram_bytes + size // 2
    assert estimate_memory(info, settings, [], ram_available=room).verdict == "CPU only"
    assert estimate_memory(info, settings, [], ram_available=room,
                           projector_bytes=size).verdict == "does not fit"


def test_the_load_dialog_counts_the_paired_projector_and_not_an_unpicked_one(
        qtbot, hearth_store, vision, tiny_vision_model):
    info, size = vision
    dialog = LoadSettingsDialog(hearth_store, info, gpus=[])
    qtbot.addWidget(dialog)
    with_images = dialog.estimate.ram_bytes
    shown = [(n.text(), v.text()) for n, v in dialog._breakdown_labels if not n.isHidden()]
    assert any(name == "Vision projector in RAM" for name, _ in shown)

    choose_projector(hearth_store, tiny_vision_model.model, None)
    text_only = LoadSettingsDialog(hearth_store, info, gpus=[])
    qtbot.addWidget(text_only)
    assert with_images - text_only.estimate.ram_bytes == size


def test_the_loaded_memory_figure_includes_the_projector(vision, tiny_vision_model):
    info, size = vision
    pool = ModelPool(ram_available=lambda: 64 * GIB)
    try:
        settings = LoadSettings(n_ctx=256, n_gpu_layers=0)
        text = pool.load("text", info.path, settings)
        both = pool.load("vision", info.path, settings, projector=tiny_vision_model.mmproj)
        assert both is not text and both.projector is not None
        assert both.memory_bytes - text.memory_bytes == size
        served = {m.key: m for m in pool.models()}
        assert served["vision"].projector_path == str(tiny_vision_model.mmproj)
        assert served["text"].projector_path is None
    finally:
        pool.shutdown()


def test_auto_gpu_layers_leaves_room_for_the_projector(qtbot, hearth_store, vision,
                                                      tiny_vision_model):
    info, size = vision
    # A GPU with room for every layer and 512 MiB to spare, but not for the projector too.
    everything = LoadSettings(n_ctx=256, n_gpu_layers=-1)
    big = [GpuInfo(0, "GPU", vram_total=64 * GIB, vram_free=64 * GIB)]
    need = sum(estimate_memory(info, everything, big, ram_available=64 * GIB).vram_bytes)
    free = need + DEFAULT_HEADROOM + size // 2
    gpu = [GpuInfo(0, "GPU", vram_total=free, vram_free=free)]

    with_images = LoadSettingsDialog(hearth_store, info, gpus=gpu)
    qtbot.addWidget(with_images)
    with_images.ctx.setValue(256)
    with_images.auto_button.click()
    paired = with_images.layers.value()
    assert paired < with_images.layers.maximum()
    # What Auto picked fits with the projector on the GPU and the 512 MiB to spare.
    assert with_images.estimate.projector_on_gpu or paired == 0
    assert sum(with_images.estimate.vram_bytes) + DEFAULT_HEADROOM <= free

    choose_projector(hearth_store, tiny_vision_model.model, None)  # text only
    text_only = LoadSettingsDialog(hearth_store, info, gpus=gpu)
    qtbot.addWidget(text_only)
    text_only.ctx.setValue(256)
    text_only.auto_button.click()
    assert text_only.layers.value() == text_only.layers.maximum() > paired
