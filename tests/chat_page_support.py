"""Helpers for the Chat page tests: load a model, send, wait, versions, rows on screen."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt

from app.engine.types import GenerationStats, LoadSettings
from app.models.store import Store
from app.ui.bridge import EngineBridge
from app.ui.chat.page import ChatPage

COUNTING = "Count from 1 to 100: 1, 2, 3,"  # the starter model keeps counting at temperature 0
STATS = GenerationStats(generated_tokens=5, tokens_per_second=50.0, time_to_first_token=0.1)


def load(qtbot, bridge: EngineBridge, page: ChatPage, path: Path, **settings) -> None:
    with qtbot.waitSignal(bridge.loaded, timeout=60_000):
        page.model_picker.load_model(str(path), LoadSettings(**settings) if settings else None)


def use_sampling(page: ChatPage, max_tokens: int = 32, temperature: float = 0.0) -> None:
    panel = page.settings_panel
    panel.temperature.setValue(temperature)
    panel.max_tokens.setValue(max_tokens)
    panel.repeat_penalty.setValue(1.0)


def send(qtbot, page: ChatPage, text: str) -> None:
    page.composer.input.setPlainText(text)
    qtbot.keyClick(page.composer.input, Qt.Key.Key_Return)


def wait_idle(qtbot, page: ChatPage) -> None:
    """Until the reply has ended and its last text is saved (the writer saves off this thread)."""
    qtbot.waitUntil(lambda: not page.controller.busy and page.controller.saved(), timeout=60_000)


def click_version_arrow(qtbot, page: ChatPage, row: int, step: int) -> None:
    index = page.messages.index(row, 0)
    switch = page.view.delegate.version_switch_at(page.view.visualRect(index), index)
    assert switch is not None, "that message shows no versions"
    arrow = switch.previous if step < 0 else switch.next
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=arrow.center())


def version_shown(page: ChatPage, row: int) -> tuple[int, int] | None:
    index = page.messages.index(row, 0)
    switch = page.view.delegate.version_switch_at(page.view.visualRect(index), index)
    return (switch.number, switch.count) if switch is not None else None


def last_index(page: ChatPage):
    return page.messages.index(page.messages.rowCount() - 1, 0)


def shown_text(page: ChatPage, row: int) -> str:
    return page.view.delegate.document_for(page.messages.index(row, 0)).toPlainText()


def seed_chat(store: Store, title: str, *pairs: tuple[str, str]) -> int:
    chat = store.create_chat(title)
    for role, content in pairs:
        store.add_message(chat.id, role, content, stats=STATS if role == "assistant" else None)
    return chat.id


def anchor_point(page: ChatPage, row: int, address: str) -> QPoint:
    """Where on screen row ``row`` shows a link to ``address``."""
    index = page.messages.index(row, 0)
    rect = page.view.visualRect(index)
    for y in range(rect.top(), rect.bottom(), 3):
        for x in range(rect.left(), rect.right(), 3):
            if page.view.delegate.anchor_at(rect, index, QPoint(x, y)) == address:
                return QPoint(x, y)
    raise AssertionError(f"no link to {address} on screen")
