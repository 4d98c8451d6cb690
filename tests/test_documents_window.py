"""Documents in the window (issue 13): attaching a folder, indexing progress and Cancel, files
that cannot be read, watched folders, chunk settings that re-index, and a question answered
with the chat's documents: its sources saved on the reply and its mode told to the user.

Real parts: the Chat page, the real all-MiniLM-L6-v2 GGUF, a real SQLite file, the tiny chat
model on the real engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chat_page_support import load, send, use_sampling, wait_idle
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QFileDialog

from app.engine.paths import data_paths
from app.engine.starter_embedding import starter_embedding_path
from app.services.documents import IndexReport
from app.ui.documents.chunking_dialog import ChunkingDialog

NOTES = {
    "garden.md": "# Garden\n\nTomatoes need six hours of sun and deep watering twice a week.",
    "boats.txt": "Sailing boats tack against the wind by turning the bow through it.",
    "bread.md": "# Bread\n\nSourdough rises slowly because wild yeast ferments the dough.",
}


@pytest.fixture
def starter_embedding(hearth_home: Path, embedding_model: Path) -> Path:
    """The session's converted MiniLM, where the window looks for the starter embedding model
    (so no test converts it again)."""
    target = starter_embedding_path(data_paths().models.absolute())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(embedding_model, target)
    return target


@pytest.fixture
def page(make_page, starter_embedding):
    page = make_page()
    yield page
    page.shutdown()


def _folder(root: Path, files: dict[str, str]) -> Path:
    folder = root / "notes"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _add_folder(qtbot, page, monkeypatch, folder: Path) -> IndexReport:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    with qtbot.waitSignal(page.documents_panel.job.finished, timeout=60_000) as done:
        page.documents_panel.add_folder_button.click()
    return done.args[1]


def _finish(qtbot, page, action) -> IndexReport:
    with qtbot.waitSignal(page.documents_panel.job.finished, timeout=60_000) as done:
        action()
    return done.args[1]


def _orchard(qtbot, page, monkeypatch, tmp_path) -> None:
    """The notes beside a long orchard log: far more than 70% of a 512-token context, so
    questions get retrieved passages."""
    filler = "\n\n".join(f"Note {n}: the orchard's apple trees were pruned in row {n}."
                         for n in range(200))
    _add_folder(qtbot, page, monkeypatch, _folder(tmp_path, {"orchard.md": filler, **NOTES}))


def _ask(qtbot, page, bridge, model, question: str):
    """``question`` to the tiny model in the open chat; the reply's sources."""
    load(qtbot, bridge, page, model, n_ctx=512)
    use_sampling(page, max_tokens=8)
    send(qtbot, page, question)
    wait_idle(qtbot, page)
    return page.messages.last_record().sources


def test_attaching_a_folder_indexes_it_lists_it_on_the_chat_and_names_unreadable_files(
        qtbot, page, monkeypatch, tmp_path, hearth_store):
    folder = _folder(tmp_path, NOTES)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")  # truncated
    assert page.documents_panel.empty_hint.isVisible()
    seen: list[str] = []
    page.documents_panel.job.progress.connect(
        lambda _p: seen.append(page.documents_panel.progress_label.text()))

    report = _add_folder(qtbot, page, monkeypatch, folder)

    assert len(report.indexed) == 3 and len(report.failures) == 1
    chat_id = page.current_chat_id()
    assert chat_id is not None, "adding documents with no chat open starts one"
    attached = hearth_store.chat_collections(chat_id)
    assert [c.name for c in attached] == ["notes"], "named after the folder added"
    panel = page.documents_panel
    item = panel.collections.item(0)
    assert item.text().splitlines() == ["notes", "3 documents · 3 chunks · 1 unreadable"]
    assert item.checkState().name == "Checked"
    assert any("chunks/s" in text and "of 4 documents" in text for text in seen)
    assert panel.progress_label.text().startswith("Indexed 3 documents")
    assert not panel.cancel_button.isVisible() and not panel.empty_hint.isVisible()
    panel.collections.setCurrentRow(0)
    assert "broken.pdf" in panel.failures.text() and panel.failures.isVisible()


def test_cancel_stops_indexing_and_keeps_what_was_finished(qtbot, page, monkeypatch, tmp_path,
                                                           hearth_store):
    paragraph = " ".join(f"Paragraph {n} describes the harbour's tides and boats." for n in
                         range(60))
    folder = _folder(tmp_path, {f"log{n:02}.txt": paragraph for n in range(30)})
    panel = page.documents_panel
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))

    counts: list[str] = []

    def cancel_after_first(p) -> None:
        counts.append(panel.collections.item(0).text().splitlines()[1])
        if p.documents_done >= 1 and panel.cancel_button.isEnabled():
            assert panel.cancel_button.isVisible()
            panel.cancel_button.click()

    panel.job.progress.connect(cancel_after_first)
    report = _finish(qtbot, page, panel.add_folder_button.click)

    assert report.cancelled
    assert counts[0].startswith("0 documents") and any(
        not c.startswith("0 documents") for c in counts), "the counts grow while it indexes"
    collection = hearth_store.list_collections()[0]
    kept = hearth_store.list_documents(collection.id)
    assert 1 <= len(kept) < 30 and all(d.status == "indexed" for d in kept)
    assert panel.progress_label.text().startswith("Cancelled")


def test_a_watched_folder_picks_up_new_and_deleted_files(qtbot, page, monkeypatch, tmp_path,
                                                         hearth_store):
    folder = _folder(tmp_path, NOTES)
    _add_folder(qtbot, page, monkeypatch, folder)
    (folder / "boats.txt").unlink()
    (folder / "tea.md").write_text("Green tea is steeped at eighty degrees for two minutes.")

    report = _finish(qtbot, page, page.documents_panel.rescan_watched)

    assert [Path(p).name for p in report.indexed] == ["tea.md"]
    assert [Path(p).name for p in report.removed] == ["boats.txt"]
    collection = hearth_store.list_collections()[0]
    names = sorted(Path(d.path).name for d in hearth_store.list_documents(collection.id))
    assert names == ["bread.md", "garden.md", "tea.md"]


def test_new_chunk_settings_warn_then_index_every_document_again(qtbot, page, monkeypatch,
                                                                 tmp_path, hearth_store):
    long_text = "\n\n".join(f"Section {n}. The lighthouse keeper logs the weather, the ships "
                            f"and the lamp's oil every hour of watch number {n}."
                            for n in range(40))
    folder = _folder(tmp_path, {"log.md": long_text, **NOTES})
    _add_folder(qtbot, page, monkeypatch, folder)
    collection = hearth_store.list_collections()[0]
    before = {Path(d.path).name: d.chunk_count for d in hearth_store.list_documents(collection.id)}

    dialog = ChunkingDialog(collection, documents=4)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled() and dialog.warning.text() == ""
    dialog.size.setValue(64)
    dialog.overlap.setValue(8)
    assert ok.isEnabled() and "all 4 documents" in dialog.warning.text()

    report = _finish(qtbot, page, lambda: page.documents_panel.change_chunking(
        collection, *dialog.chosen()))

    assert len(report.indexed) == 4, "every document is read again, not skipped as unchanged"
    changed = hearth_store.get_collection(collection.id)
    assert (changed.chunk_size, changed.chunk_overlap) == (64, 8)
    after = {Path(d.path).name: d.chunk_count for d in hearth_store.list_documents(collection.id)}
    assert after["log.md"] > before["log.md"]


def test_a_question_is_answered_from_the_documents_with_its_sources_saved(
        qtbot, page, bridge, monkeypatch, tmp_path, hearth_store, tiny_chat_model):
    _add_folder(qtbot, page, monkeypatch, _folder(tmp_path, NOTES))

    _ask(qtbot, page, bridge, tiny_chat_model, "How often should tomatoes be watered?")

    reply = page.messages.last_record()
    stored = hearth_store.list_messages(page.current_chat_id())[-1]
    for record in (reply, stored):
        sources = record.sources
        assert sources is not None and sources.mode == "whole"
        assert {Path(c.document_path).name for c in sources.citations} == set(NOTES)
    question = hearth_store.list_messages(page.current_chat_id())[-2]
    assert question.content == "How often should tomatoes be watered?", \
        "the question is stored as typed; only the copy sent carries the documents"


def test_a_question_the_documents_do_not_cover_gets_the_honest_answer(
        qtbot, page, bridge, monkeypatch, tmp_path, tiny_chat_model):
    _orchard(qtbot, page, monkeypatch, tmp_path)

    sources = _ask(qtbot, page, bridge, tiny_chat_model,
                   "What is the airspeed of a quantum processor's cooling fan?")

    assert sources is not None and sources.mode == "nothing_found"
    assert sources.citations == ()
    assert "no passage was relevant" in sources.explanation


def test_retrieval_follows_the_top_k_setting_and_cites_the_right_file(
        qtbot, page, bridge, monkeypatch, tmp_path, hearth_store, tiny_chat_model):
    _orchard(qtbot, page, monkeypatch, tmp_path)
    collection = hearth_store.list_collections()[0]
    # Short passages, so more than two would fit the tiny model's context.
    _finish(qtbot, page, lambda: page.documents_panel.change_chunking(collection, 32, 0))
    page.documents_panel.retrieval.top_k.setValue(2)

    sources = _ask(qtbot, page, bridge, tiny_chat_model,
                   "How many hours of sun do tomatoes need?")
    assert sources is not None and sources.mode == "retrieval"
    assert len(sources.citations) == 2, "the top-k setting is what the chat retrieves"
    assert Path(sources.citations[0].document_path).name == "garden.md"
    assert "six hours of sun" in sources.citations[0].text


def test_file_names_and_reasons_from_the_disk_are_shown_as_typed(qtbot, page, monkeypatch,
                                                                 tmp_path):
    # A folder and a file named like markup: the list and the failures show them literally.
    hostile = '<img src="x.png"><b>notes\u202egpj'  # no slash: it is a file name
    folder = tmp_path / hostile
    folder.mkdir()
    (folder / "garden.md").write_text(NOTES["garden.md"])
    (folder / f"{hostile}.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    _add_folder(qtbot, page, monkeypatch, folder)

    panel = page.documents_panel
    assert panel.collections.item(0).text().splitlines()[0] == hostile
    assert panel.failures.textFormat() == Qt.TextFormat.PlainText
    assert f"{hostile}.pdf: " in panel.failures.text()
