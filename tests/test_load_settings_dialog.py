"""Load settings: the live estimate, persistence, the picker loading with them, the fit question."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox
from test_hardware import FakeNVML

from app.engine.gguf.info import read_model_info
from app.engine.sizing.hardware import probe_hardware
from app.engine.types import LoadSettings
from app.ui import load_settings_dialog as lsd
from app.ui.chat.model_picker import ModelPicker
from app.ui.load_settings_dialog import LoadSettingsDialog, saved_load_settings, settings_key

GIB = 1 << 30


@pytest.fixture
def info(hearth_store, tiny_model):
    info = read_model_info(tiny_model)
    hearth_store.add_model_file(info)
    return info


def make_dialog(qtbot, store, info, gpus) -> LoadSettingsDialog:
    dialog = LoadSettingsDialog(store, info, gpus=gpus)
    qtbot.addWidget(dialog)
    return dialog


def test_offload_slider_moves_the_vram_estimate_with_one_fake_gpu(
        qtbot, hearth_store, info) -> None:
    gpus = probe_hardware(nvml=FakeNVML([("Fake 8G", 8 * GIB, 1 * GIB)])).gpus
    dialog = make_dialog(qtbot, hearth_store, info, gpus)
    assert dialog.layers.maximum() == info.block_count + 1
    assert dialog.auto_button.isEnabled()

    dialog.layers.setValue(0)
    assert dialog.estimate.vram_bytes == [0]
    assert dialog.estimate.verdict == "CPU only"
    cpu_ram = dialog.estimate.ram_bytes

    dialog.layers.setValue(1)
    one_layer = sum(dialog.estimate.vram_bytes)
    assert one_layer > 0
    assert dialog.estimate.verdict == "partial offload"

    dialog.layers.setValue(dialog.layers.maximum())
    assert "(max)" in dialog.layers_label.text()
    assert sum(dialog.estimate.vram_bytes) > one_layer
    assert dialog.estimate.ram_bytes < cpu_ram
    assert dialog.estimate.verdict == "full offload"
    assert "full offload" in dialog.verdict_label.text()
    assert dialog.settings().n_gpu_layers == -1

    dialog.layers.setValue(0)
    dialog.auto_button.click()  # a tiny model fits an 8 GB GPU whole
    assert dialog.layers.value() == dialog.layers.maximum()


def test_without_a_gpu_auto_is_off_and_everything_stays_on_the_cpu(
        qtbot, hearth_store, info) -> None:
    dialog = make_dialog(qtbot, hearth_store, info, [])
    assert not dialog.auto_button.isEnabled()
    dialog.layers.setValue(dialog.layers.maximum())
    assert dialog.estimate.verdict == "CPU only"
    assert "No NVIDIA GPU" in dialog.verdict_label.text()


def test_context_is_capped_at_the_models_maximum(qtbot, hearth_store, info) -> None:
    dialog = make_dialog(qtbot, hearth_store, info, [])
    assert dialog.ctx.maximum() == info.context_length
    small = dialog.estimate.kv_bytes
    dialog.ctx.setValue(info.context_length)
    assert dialog.estimate.kv_bytes > small or info.context_length == dialog.estimate.n_ctx


def test_fewer_parallel_requests_need_less_memory(qtbot, hearth_store, info) -> None:
    dialog = make_dialog(qtbot, hearth_store, info, [])
    four = dialog.estimate.kv_bytes
    dialog.parallel.setValue(1)
    assert dialog.estimate.kv_bytes * 5 == four * 2  # the window's slot plus one, not plus four
    assert dialog.settings().parallel == 1


def test_settings_persist_and_the_picker_loads_with_them(
        qtbot, hearth_store, info, bridge) -> None:
    dialog = make_dialog(qtbot, hearth_store, info, [])
    dialog.ctx.setValue(256)
    dialog.batch.setValue(64)
    dialog.flash.setChecked(True)
    dialog.seed.setValue(42)
    dialog.save()

    saved = hearth_store.get_setting(settings_key(info.path))
    assert saved["n_ctx"] == 256 and saved["flash_attn"] is True and saved["seed"] == 42
    again = make_dialog(qtbot, hearth_store, info, [])
    assert again.ctx.value() == 256
    assert again.flash.isChecked() and again.seed.value() == 42
    assert saved_load_settings(hearth_store, info.path, info.context_length).n_batch == 64

    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    with qtbot.waitSignal(bridge.loaded, timeout=30_000):
        assert picker.load_model(info.path) is not None
    assert bridge.n_ctx == 256


def test_quantized_kv_cache_is_offered_only_when_the_head_size_allows(
        qtbot, hearth_store, info) -> None:
    # The tiny model's heads are 16 wide; llama.cpp refuses q8_0/q4_0 blocks of 32 there.
    dialog = make_dialog(qtbot, hearth_store, info, [])
    model = dialog.kv_type.model()
    assert model.item(0).isEnabled()
    assert not model.item(1).isEnabled() and not model.item(2).isEnabled()


def test_picker_settings_button_opens_the_dialog(qtbot, hearth_store, info, bridge) -> None:
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    assert picker.settings_button.isEnabled()
    dialog = picker.edit_settings()
    assert isinstance(dialog, LoadSettingsDialog)
    assert dialog.isVisible()
    assert dialog.info.path == info.path
    dialog.close()


def test_a_model_that_does_not_fit_asks_first_and_no_means_no_load(
        qtbot, hearth_store, info, bridge, monkeypatch) -> None:
    monkeypatch.setattr(lsd, "ram_available", lambda: 1024)
    asked: list[str] = []

    def answer(_parent, title, text, *_args):
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", answer)
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    loads: list[object] = []
    bridge.loaded.connect(lambda *args: loads.append(args))
    assert picker.load_model(info.path) is None
    assert len(asked) == 1 and "RAM" in asked[0]
    assert not picker.loading
    qtbot.wait(200)
    assert loads == [] and bridge.loaded_info is None


def test_loading_anyway_is_the_users_choice(
        qtbot, hearth_store, info, bridge, monkeypatch) -> None:
    monkeypatch.setattr(lsd, "ram_available", lambda: 1024)
    monkeypatch.setattr(lsd, "ask_load_anyway", lambda *_: True)
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    with qtbot.waitSignal(bridge.loaded, timeout=30_000):
        assert picker.load_model(info.path, LoadSettings(n_ctx=128)) is not None


def test_models_page_opens_load_settings(qtbot, hearth_store, info) -> None:
    from app.ui.models.page import ModelsPage
    from app.ui.workers import TaskRunner

    tasks = TaskRunner()
    page = ModelsPage(hearth_store, tasks)
    qtbot.addWidget(page)
    assert page.settings_button.isEnabled()
    dialog = page.edit_load_settings()
    assert dialog is not None and dialog.info.path == info.path
    dialog.close()
    assert tasks.shutdown()
