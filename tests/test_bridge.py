"""The bridge delivers engine events on the GUI thread: tokens coalesced per tick, in order."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QTimer

from app.engine.types import ChatMessage, LoadSettings, Sampling
from app.ui.bridge import TICK_MS


def test_tokens_arrive_coalesced_on_the_gui_thread_and_before_done(qtbot, bridge, tiny_model):
    with qtbot.waitSignal(bridge.loaded, timeout=30_000):
        bridge.load(tiny_model, LoadSettings(n_ctx=512))
    batches: list[str] = []
    threads: set[int] = set()
    order: list[str] = []

    def on_tokens(job: int, text: str) -> None:
        batches.append(text)
        threads.add(threading.get_ident())
        order.append("tokens")

    bridge.tokens.connect(on_tokens)
    bridge.done.connect(lambda *a: order.append("done"))
    with qtbot.waitSignal(bridge.done, timeout=30_000) as done:
        bridge.chat([ChatMessage("user", "hello")], Sampling(temperature=0, max_tokens=300))
    _job, text, stats = done.args
    assert "".join(batches) == text and stats.generated_tokens == 300
    assert len(batches) < stats.generated_tokens  # many tokens per GUI update, not one each
    assert threads == {threading.get_ident()}  # delivered on the GUI thread
    assert order[-1] == "done" and order.count("done") == 1


def test_a_failed_load_is_reported_and_keeps_the_loaded_model(qtbot, bridge, tiny_model, tmp_path):
    with qtbot.waitSignal(bridge.loaded, timeout=30_000):
        bridge.load(tiny_model, LoadSettings(n_ctx=256))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"\0" * 1024)
    with qtbot.waitSignal(bridge.failed, timeout=30_000) as failed:
        bridge.load(junk)
    assert failed.args[2] == "load" and "junk.gguf" in failed.args[1]
    assert bridge.loaded_path == str(tiny_model)


def test_an_idle_bridge_never_wakes_the_gui_and_a_stream_wakes_it_once_per_tick(
        qtbot, bridge, tiny_model):
    # Each GUI wake-up during a reply takes a core from the decode threads on a small machine.
    with qtbot.waitSignal(bridge.loaded, timeout=30_000):
        bridge.load(tiny_model, LoadSettings(n_ctx=512))
    fired = []
    for timer in bridge.findChildren(QTimer):
        timer.timeout.connect(lambda: fired.append(1))
    qtbot.wait(600)
    assert fired == []

    batches: list[float] = []
    bridge.tokens.connect(lambda *_: batches.append(time.monotonic()))
    started = time.monotonic()
    with qtbot.waitSignal(bridge.done, timeout=30_000) as done:
        bridge.chat([ChatMessage("user", "hello")], Sampling(temperature=0, max_tokens=300))
    elapsed = time.monotonic() - started
    assert done.args[1] and len(batches) <= elapsed * 1000 / TICK_MS + 2
