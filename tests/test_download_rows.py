"""What the Downloads panel says while a file is verified or paused for a reason."""

from __future__ import annotations

from pathlib import Path

from fake_hub import FakeHub
from PySide6.QtCore import Qt

from app.engine.hub.api import file_targets
from app.engine.hub.downloads import BUSY_ELSEWHERE, DownloadEvent, DownloadManager
from app.ui.discover.downloads_panel import DownloadsPanel

REPO = "tinyorg/Tiny-1B-GGUF"
BIG = "Tiny-1B-Q8_0.gguf"


def _status(panel: DownloadsPanel) -> str:
    return panel.model.index(0, 4).data(Qt.ItemDataRole.DisplayRole)


def test_rows_show_verifying_progress_then_done(qtbot: object, fake_hub: FakeHub,
                                                hearth_home: Path) -> None:
    target = file_targets(REPO, [BIG])[0]
    first = DownloadManager(hearth_home / "models")
    assert first.wait([first.add(target)], timeout=20)
    events: list[DownloadEvent] = []
    again = DownloadManager(hearth_home / "models", events.append)  # finds it complete
    assert again.wait([again.add(target)], timeout=20)
    panel = DownloadsPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    shown = []
    for event in events:
        panel.model.apply(event)
        shown.append(_status(panel))
    assert "Verifying… 100%" in shown and shown[-1] == "Done"
    bar = panel.model.index(0, 1).data(Qt.ItemDataRole.DisplayRole)
    panel.model.apply(DownloadEvent(events[0].key, "verifying", 40, 100))
    assert _status(panel) == "Verifying… 40%"
    # The bar keeps the file's bytes while the hash runs (the event counts hashed bytes).
    assert panel.model.index(0, 1).data(Qt.ItemDataRole.DisplayRole) == bar
    panel.table.selectRow(0)
    assert panel.pause_button.isEnabled()  # a long hash can be paused


def test_paused_rows_say_why_and_offer_resume(qtbot: object) -> None:
    panel = DownloadsPanel()
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    key = f"{REPO}/{BIG}"
    panel.model.apply(DownloadEvent(key, "paused", 10, 100, message=BUSY_ELSEWHERE))
    assert _status(panel) == f"Paused: {BUSY_ELSEWHERE}"
    panel.model.apply(DownloadEvent(key, "paused", 10, 100,
                                    message="disk full: free 1.2 GB, then Resume"))
    assert _status(panel) == "Paused: disk full: free 1.2 GB, then Resume"
    panel.table.selectRow(0)
    assert panel.resume_button.isEnabled()
    panel.model.apply(DownloadEvent(key, "paused", 10, 100))
    assert _status(panel) == "Paused"
