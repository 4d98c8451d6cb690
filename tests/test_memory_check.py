"""After a load, the picker shows estimated vs measured memory, and the pairs are kept in SQLite."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from app.engine.gguf.info import read_model_info
from app.engine.inference.events import Loaded, MemoryCheck, MemoryMeasured
from app.engine.serving.host import EngineHost
from app.engine.types import ChatMessage, LoadSettings, Sampling
from app.engine.units import human_bytes
from app.models.migrations import migrate_to
from app.models.store import Store
from app.ui.chat.model_picker import ModelPicker


def _wait_for(events: list, kind: type, timeout: float = 60.0) -> object:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events:
            if isinstance(event, kind):
                return event
        time.sleep(0.01)
    raise AssertionError(f"no {kind.__name__} within {timeout}s: {events!r}")


def test_host_reports_estimate_beside_measured_growth_and_again_after_a_reply(tiny_model):
    events: list = []
    host = EngineHost(events.append)
    try:
        host.load(tiny_model, LoadSettings(n_ctx=256, kv_cache_type="f16"))
        loaded = _wait_for(events, Loaded)
        check = loaded.memory
        assert isinstance(check, MemoryCheck) and not check.after_reply
        assert check.model_path == str(tiny_model) and check.n_ctx == 256
        assert check.kv_type == "f16" and check.gpu_layers == 0
        assert check.estimated_ram > 0 and check.actual_ram_growth > 0
        host.chat([ChatMessage("user", "hi")], Sampling(temperature=0, max_tokens=8))
        measured = _wait_for(events, MemoryMeasured)
        assert measured.check.after_reply and measured.check.estimated_ram == check.estimated_ram
        assert measured.check.actual_ram_growth > 0
        # Only the first reply of a load is measured again.
        events.clear()
        host.chat([ChatMessage("user", "again")], Sampling(temperature=0, max_tokens=4))
        from app.engine.inference.events import Done

        _wait_for(events, Done)
        assert not any(isinstance(e, MemoryMeasured) for e in events)
    finally:
        host.shutdown()


def test_starter_pair_is_shown_in_the_picker_and_stored(qtbot, bridge, hearth_store,
                                                        starter_model):
    store: Store = hearth_store
    store.add_model_file(read_model_info(starter_model), source="starter")
    picker = ModelPicker(store, bridge)
    qtbot.addWidget(picker)
    with qtbot.waitSignal(bridge.memoryChecked, timeout=60_000) as got:
        picker.load_model(str(starter_model), LoadSettings(n_ctx=1024))
    check: MemoryCheck = got.args[0]
    assert check.estimated_ram > 100_000_000 and check.actual_ram_growth > 0
    label = picker.memory_label.text()
    assert label.startswith(f"Memory: estimated {human_bytes(check.estimated_ram)} · measured ")
    assert "(RAM" in label and not picker.memory_label.isHidden()

    with qtbot.waitSignal(bridge.memoryChecked, timeout=60_000) as again:
        bridge.chat([ChatMessage("user", "The capital of France is")],
                    Sampling(temperature=0, max_tokens=8))
    after: MemoryCheck = again.args[0]
    assert after.after_reply and after.actual_ram_growth > 0
    assert f"measured {human_bytes(after.actual_ram_growth)} (RAM)" in picker.memory_label.text()

    rows = store.list_memory_checks(starter_model)
    assert [r.after_reply for r in rows] == [False, True]
    assert rows[1].estimated_ram == after.estimated_ram
    assert rows[1].actual_ram == after.actual_ram_growth
    assert rows[1].n_ctx == 1024 and rows[1].kv_type == "f16" and rows[1].gpu_layers == 0
    assert (rows[1].estimated_vram is None) == (after.actual_vram_growth is None)
    assert store.list_memory_checks("/elsewhere.gguf") == []

    with qtbot.waitSignal(bridge.unloaded, timeout=30_000):
        bridge.unload()
    assert picker.memory_label.isHidden()


def test_vram_pair_is_shown_when_measured(qtbot, hearth_store, bridge):
    picker = ModelPicker(hearth_store, bridge)
    qtbot.addWidget(picker)
    picker._show_memory(MemoryCheck("/m.gguf", 512, "q8_0", 20, 400_000_000, 410_000_000,
                                    1_000_000_000, 1_100_000_000, after_reply=True))
    assert picker.memory_label.text() == (
        "Memory: estimated 400.0 MB · measured 410.0 MB (RAM) · "
        "estimated 1.0 GB · measured 1.1 GB (VRAM)")


def test_upgrading_a_0002_database_keeps_its_chats(tmp_path: Path) -> None:
    db_path = tmp_path / "old.db"
    migrate_to(db_path, "0002_downloads")
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as connection:
        # Written as that version wrote it: today's Store knows columns 0002 did not have.
        chat_id = connection.execute(text(
            "INSERT INTO chats (title, system_prompt, sampling, overflow_policy, created_at, "
            "updated_at) VALUES ('From 0002', 'kept', '{}', 'truncate_oldest', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")).lastrowid
    engine.dispose()

    with Store.open(db_path) as store:
        kept = store.get_chat(chat_id)
        assert kept is not None and kept.title == "From 0002" and kept.system_prompt == "kept"
        assert store.list_memory_checks("/m.gguf") == []
