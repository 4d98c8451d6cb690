"""The chat's model picker lists the library at once and adds the " · vision" marks when the
background pairing pass ends (no GGUF header is read on the GUI thread, the selection stays
put), and My Models and the "cannot read images" notice use that same pass's result."""

from __future__ import annotations

import shutil
import threading

import pytest

from app.engine.gguf.info import read_model_info
from app.services import projectors
from app.services.chat_images import vision_models
from app.ui.chat.model_picker import VISION_MARK, ModelPicker
from app.ui.models.page import ModelsPage
from app.ui.workers import TaskRunner


@pytest.fixture
def library(tmp_path, hearth_store, tiny_vision_model, tiny_model):
    """A vision model with its projector in a fresh folder (so no pairing is cached yet) and a
    text model in another."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_vision_model.model.parent, repo)
    model = repo / tiny_vision_model.model.name
    text = tmp_path / "text" / "tiny-text-F32.gguf"
    text.parent.mkdir()
    shutil.copyfile(tiny_model, text)
    hearth_store.add_model_file(read_model_info(model))
    hearth_store.add_model_file(read_model_info(text))
    return model, text


@pytest.fixture
def header_reads(monkeypatch):
    """Records the thread of every folder's header reading; each read waits for ``gate``."""
    gate = threading.Event()
    threads: list[threading.Thread] = []
    real = projectors.pair_folder

    def spy(folder):
        threads.append(threading.current_thread())
        gate.wait(10)
        return real(folder)

    monkeypatch.setattr(projectors, "pair_folder", spy)
    yield gate, threads
    gate.set()  # never leave a worker waiting


def _labels(picker: ModelPicker) -> dict[str, str]:
    return {picker.combo.itemData(i): picker.combo.itemText(i)
            for i in range(picker.combo.count())}


def test_the_picker_fills_at_once_and_marks_vision_when_the_pass_ends(
        qtbot, hearth_store, bridge, library, header_reads):
    model, text = library
    gate, threads = header_reads
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)

    # Both models are listed before any header is read; the marks are not there yet.
    labels = _labels(picker)
    assert sorted(labels) == sorted([str(model), str(text)])
    assert not any(VISION_MARK in label for label in labels.values())
    picker.combo.setCurrentIndex(picker.combo.findData(str(model)))

    with qtbot.assertNotEmitted(picker.combo.currentIndexChanged):
        gate.set()
        qtbot.waitUntil(lambda: _labels(picker)[str(model)].endswith(VISION_MARK))
    assert VISION_MARK not in _labels(picker)[str(text)]
    assert picker.combo.currentData() == str(model)  # the selection did not jump
    assert picker.combo.currentText().endswith(VISION_MARK)
    assert threads and threading.main_thread() not in threads


def test_my_models_and_the_notice_reuse_the_pickers_pass(
        qtbot, hearth_store, bridge, library, header_reads):
    model, text = library
    gate, threads = header_reads
    gate.set()
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    qtbot.waitUntil(lambda: _labels(picker)[str(model)].endswith(VISION_MARK))
    reads = len(threads)

    # My Models knows the pairing as soon as it opens, before its own pass ends.
    tasks = TaskRunner()
    page = ModelsPage(hearth_store, tasks)
    qtbot.addWidget(page)
    assert page.projector_menu.is_vision(str(model))
    assert not page.projector_menu.is_vision(str(text))
    # The notice's list of vision models is the same result: no header read for it.
    assert vision_models(hearth_store) == [model.name]
    assert len(threads) == reads

    # Unpicking the projector in My Models takes the mark off in the picker at once.
    page.select_path(str(model))
    page.projector_menu.none_action.trigger()
    assert not _labels(picker)[str(model)].endswith(VISION_MARK)
    assert vision_models(hearth_store) == []
    assert tasks.shutdown()


def test_a_load_at_startup_waits_for_the_pass_and_loads_with_the_projector(
        qtbot, hearth_store, bridge, library, header_reads):
    # The window loads the last model as it opens, while the picker's first pass is still
    # reading the folder: the load waits for it instead of reading (or waiting on) it here.
    model, _text = library
    gate, threads = header_reads
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    picker.load_when_paired(str(model))
    assert not picker.loading and bridge.loaded_path is None

    gate.set()
    qtbot.waitUntil(lambda: bridge.loaded_path == str(model), timeout=20_000)
    assert bridge.loaded_projector is not None and bridge.loaded_projector.endswith(".gguf")
    assert threads and threading.main_thread() not in threads
