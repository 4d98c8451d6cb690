"""My Models pairs a vision model with its projector, lets the user pick another or none (kept
across restarts), never lists the projector as a model, and the chat's picker marks vision."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.services.library import import_path
from app.services.projectors import projector_path
from app.ui.chat.model_picker import ModelPicker
from app.ui.models.page import ModelsPage
from app.ui.workers import TaskRunner


@pytest.fixture
def library(tmp_path, hearth_store, tiny_vision_model, tiny_model):
    """A repo-like folder (vision model + projector) and a text-only model, imported as a user
    would: the whole folder."""
    repo = tmp_path / "repo"
    shutil.copytree(tiny_vision_model.model.parent, repo)
    text = tmp_path / "text" / "tiny-text-F16.gguf"
    text.parent.mkdir()
    shutil.copyfile(tiny_model, text)
    report = import_path(hearth_store, repo)
    import_path(hearth_store, text)
    assert [r.path for r in report.added] == [str(repo / tiny_vision_model.model.name)]
    return repo / tiny_vision_model.model.name, repo / tiny_vision_model.mmproj.name, text


@pytest.fixture
def tasks():
    runner = TaskRunner()
    yield runner
    assert runner.shutdown()


def _page(qtbot, store, tasks) -> ModelsPage:
    page = ModelsPage(store, tasks)
    qtbot.addWidget(page)
    return page


def _vision_column(page: ModelsPage) -> dict[str, str]:
    model = page.table_model
    column = [model.headerData(c, _horizontal()) for c in range(model.columnCount())].index(
        "Vision")
    return {model.record(r).path: model.index(r, column).data() for r in range(model.rowCount())}


def _horizontal():
    from PySide6.QtCore import Qt

    return Qt.Orientation.Horizontal


def test_my_models_shows_the_projector_as_an_attachment_of_its_model(qtbot, hearth_store,
                                                                     tasks, library):
    model, mmproj, text = library
    page = _page(qtbot, hearth_store, tasks)
    # The projector is no row of its own: only the two models are listed.
    assert sorted(_vision_column(page)) == sorted([str(model), str(text)])
    qtbot.waitUntil(lambda: _vision_column(page)[str(model)] == "vision")
    assert _vision_column(page)[str(text)] == ""
    page.select_path(str(model))
    first = page.details.toPlainText().splitlines()[0]
    assert first.startswith(f"Vision projector: {mmproj.name} (")
    assert "paired automatically" in first
    page.select_path(str(text))
    assert "Vision projector" not in page.details.toPlainText()


def test_unpick_and_pick_another_projector_persist_and_reach_the_picker(
        qtbot, hearth_store, tasks, library, tmp_path, monkeypatch, bridge):
    model, mmproj, text = library
    page = _page(qtbot, hearth_store, tasks)
    qtbot.waitUntil(lambda: _vision_column(page)[str(model)] == "vision")
    page.select_path(str(model))

    with qtbot.waitSignal(page.libraryChanged):
        page.projector_menu.none_action.trigger()
    assert _vision_column(page)[str(model)] == ""
    assert "none (you chose to load this model as text only)" in page.details.toPlainText()
    assert projector_path(hearth_store, model) is None

    # Another projector file, elsewhere, picked through the file dialog.
    other = tmp_path / "elsewhere" / "my-projector.gguf"
    other.parent.mkdir()
    shutil.copyfile(mmproj, other)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(other), ""))
    page.projector_menu.pick_action.trigger()
    assert _vision_column(page)[str(model)] == "vision"
    assert page.details.toPlainText().startswith("Vision projector: my-projector.gguf (")
    assert "your choice" in page.details.toPlainText().splitlines()[0]

    # A text model picked as a projector is refused with the reason; the pick stays.
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _p, _t, text_: warnings.append(text_))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(text), ""))
    page.projector_menu.pick_action.trigger()
    assert warnings and "is not a vision projector" in warnings[0]
    assert projector_path(hearth_store, model) == other

    # Kept across a restart of the page; the chat's picker marks the model "vision".
    again = _page(qtbot, hearth_store, tasks)
    qtbot.waitUntil(lambda: again.projector_menu.choice(str(model)) is not None)
    again.select_path(str(model))
    assert "my-projector.gguf" in again.details.toPlainText()
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    labels = {picker.combo.itemData(i): picker.combo.itemText(i)
              for i in range(picker.combo.count())}
    assert labels[str(model)].endswith(" · vision")
    assert "vision" not in labels[str(text)]

    # Back to automatic pairing: the projector beside it again.
    again.projector_menu.auto_action.trigger()
    assert projector_path(hearth_store, model) == mmproj
    assert "paired automatically" in again.details.toPlainText().splitlines()[0]
