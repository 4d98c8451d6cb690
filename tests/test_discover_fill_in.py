"""Discover fills in as the Hub answers (issue 15), and marks and suggests embedding models
(issue 13): against the local fake Hub with the real huggingface_hub client."""

from __future__ import annotations

import threading

import pytest
from fake_hub import FakeHub, FakeRepo, Faults
from PySide6.QtCore import Qt

from app.engine.units import human_bytes
from app.ui.discover.details import CHECKING
from app.ui.discover.suggestion import SUGGESTED_EMBEDDING_REPO
from app.ui.main_window import DISCOVER_PAGE

VERDICTS = {"full offload", "partial offload", "CPU only", "does not fit"}
MODELS = ("Tiny-1B-Q4_K_M.gguf", "Tiny-1B-Q8_0.gguf", "Tiny-1B-F16.gguf")
TAGS_COLUMN = 6


def _page(qtbot, main_window):
    main_window.show_page(DISCOVER_PAGE)
    return main_window.discover_page


def _search(qtbot, page, text: str, rows: int) -> None:
    qtbot.keyClicks(page.search_box, text)
    qtbot.waitUntil(lambda: page.results_model.rowCount() == rows, timeout=10_000)


def _ids(page) -> list[str]:
    return [page.results_model.record(r).repo_id for r in range(page.results_model.rowCount())]


def _badges(page) -> dict[str, str]:
    return {item.data(0, Qt.ItemDataRole.UserRole): item.text(2)
            for item in page.details.file_items()}


@pytest.fixture
def held(fake_hub: FakeHub):
    """Each model file's bytes wait for its own event: header probes finish when the test says."""
    events = {name: threading.Event() for name in MODELS}
    for name, event in events.items():
        fake_hub.faults[name] = Faults(hold=event)
    yield events
    for event in events.values():  # never leave a server thread (and a job) waiting
        event.set()


def test_rows_show_at_once_and_badges_fill_in_one_by_one(qtbot, fake_hub: FakeHub,
                                                         main_window, held) -> None:
    page = _page(qtbot, main_window)
    _search(qtbot, page, "tiny", rows=2)
    page.results.selectRow(_ids(page).index("tinyorg/Tiny-1B-GGUF"))

    # Every row with its size from the listing, while no header probe has finished.
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 4, timeout=10_000)
    files = fake_hub.repos["tinyorg/Tiny-1B-GGUF"].files
    sizes = {item.data(0, Qt.ItemDataRole.UserRole): item.text(1)
             for item in page.details.file_items()}
    assert sizes == {name: human_bytes(len(data)) for name, data in files.items()}
    badges = _badges(page)
    assert all(badges[name] == CHECKING for name in MODELS)
    # The projector needs no header (the size rule), and the card does not wait for headers.
    qtbot.waitUntil(lambda: _badges(page)["mmproj-Tiny-1B-f16.gguf"] in VERDICTS,
                    timeout=10_000)
    qtbot.waitUntil(lambda: "Tiny 1B" in page.details.card.toPlainText(), timeout=10_000)
    assert all(_badges(page)[name] == CHECKING for name in MODELS)
    button = page.details.download_button(page.details.file_items()[0])
    assert button.isEnabled()  # a file can be downloaded before its fit is known

    # Each badge arrives when its own probe finishes, the others still checking.
    waiting = list(MODELS)
    for name in ("Tiny-1B-F16.gguf", "Tiny-1B-Q4_K_M.gguf", "Tiny-1B-Q8_0.gguf"):
        held[name].set()
        waiting.remove(name)
        qtbot.waitUntil(lambda n=name: _badges(page)[n] in VERDICTS, timeout=10_000)
        assert "Estimated at" in next(i for i in page.details.file_items()
                                      if i.data(0, Qt.ItemDataRole.UserRole) == name).toolTip(2)
        assert all(_badges(page)[w] == CHECKING for w in waiting)

    # Complete now, and kept: coming back shows the badges at once, without asking the Hub.
    qtbot.waitUntil(lambda: page._details_worker is None, timeout=10_000)
    page.results.selectRow(1 - _ids(page).index("tinyorg/Tiny-1B-GGUF"))
    seen = len(fake_hub.requests)
    page.results.selectRow(_ids(page).index("tinyorg/Tiny-1B-GGUF"))
    assert set(_badges(page).values()) <= VERDICTS
    assert "Tiny 1B" in page.details.card.toPlainText()
    assert len(fake_hub.requests) == seen


def test_a_repository_left_mid_probe_is_fetched_whole_when_opened_again(
        qtbot, fake_hub: FakeHub, main_window, held) -> None:
    page = _page(qtbot, main_window)
    _search(qtbot, page, "tiny", rows=2)
    ids = _ids(page)
    page.results.selectRow(ids.index("tinyorg/Tiny-1B-GGUF"))
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 4, timeout=10_000)
    page.results.selectRow(ids.index("otherorg/Tiny-Uncensored-7B-GGUF"))
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 2
                    and set(_badges(page).values()) <= VERDICTS, timeout=10_000)
    for event in held.values():  # the left repository's probes answer, too late to be shown
        event.set()
    qtbot.wait(200)
    assert page.details.title.text() == "otherorg/Tiny-Uncensored-7B-GGUF"
    assert len(page.details.file_items()) == 2

    # Its half-finished fetch was not kept: opening it again fetches it whole.
    page.results.selectRow(ids.index("tinyorg/Tiny-1B-GGUF"))
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 4
                    and set(_badges(page).values()) <= VERDICTS
                    and "Tiny 1B" in page.details.card.toPlainText(), timeout=10_000)


@pytest.fixture
def embedding_hub(fake_hub: FakeHub, tiny_gguf_bytes: dict[str, bytes]) -> FakeHub:
    small = tiny_gguf_bytes["small"]
    fake_hub.add_repo(FakeRepo(
        SUGGESTED_EMBEDDING_REPO, {"nomic-embed-text-v1.5.Q4_K_M.gguf": small},
        readme="# nomic-embed-text-v1.5", downloads=90, likes=9,
        tags=["gguf", "license:apache-2.0", "sentence-similarity"]))
    # Only its name says what it is.
    fake_hub.add_repo(FakeRepo("someone/mxbai-embed-large-v1-GGUF",
                               {"mxbai-embed-large-v1-f16.gguf": small}, downloads=10,
                               tags=["gguf", "license:apache-2.0"]))
    return fake_hub


def test_embedding_models_are_marked_and_said_to_be_for_documents(qtbot, embedding_hub,
                                                                   main_window) -> None:
    page = _page(qtbot, main_window)
    _search(qtbot, page, "embed", rows=2)
    for row in range(2):
        assert "embedding" in page.results_model.index(row, TAGS_COLUMN).data()
    page.results.selectRow(_ids(page).index("someone/mxbai-embed-large-v1-GGUF"))
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 1, timeout=10_000)
    assert "tags: embedding" in page.details.subtitle.text()
    assert page.details.purpose.isVisibleTo(page)
    assert "not for chatting" in page.details.purpose.text()

    page.search_box.setText("tiny")
    qtbot.waitUntil(lambda: "tinyorg/Tiny-1B-GGUF" in _ids(page), timeout=10_000)
    row = _ids(page).index("tinyorg/Tiny-1B-GGUF")
    assert "embedding" not in page.results_model.index(row, TAGS_COLUMN).data()
    page.results.selectRow(row)
    qtbot.waitUntil(lambda: len(page.details.file_items()) == 4, timeout=10_000)
    assert not page.details.purpose.isVisibleTo(page)


def test_the_suggestion_searches_for_an_embedding_model_and_opens_it(qtbot, embedding_hub,
                                                                      main_window) -> None:
    page = _page(qtbot, main_window)
    assert page.suggestion.isVisibleTo(page)
    assert "documents" in page.suggestion.text.text()
    qtbot.mouseClick(page.suggestion.button, Qt.MouseButton.LeftButton)
    assert page.search_box.text() == SUGGESTED_EMBEDDING_REPO
    qtbot.waitUntil(lambda: _ids(page) == [SUGGESTED_EMBEDDING_REPO], timeout=10_000)
    qtbot.waitUntil(lambda: page.details.title.text() == SUGGESTED_EMBEDDING_REPO
                    and len(page.details.file_items()) == 1, timeout=10_000)
    assert page.details.purpose.isVisibleTo(page)
    assert "apache-2.0" in page.details.subtitle.text()
