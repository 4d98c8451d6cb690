"""Shared fixtures: the local fake Hub with a few GGUF repositories built from tiny models, and
the chat page on the test Store with its engine bridge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import FakeHub, FakeRepo

from app.engine.serving.pool import ModelPool
from app.models.store import Store
from app.ui.bridge import EngineBridge
from app.ui.chat.page import ChatPage


@pytest.fixture(scope="session", autouse=True)
def _qt_offscreen(hearth_offscreen_qt: None) -> None:
    """Every Hearth test runs Qt offscreen, also when run without `make test`'s setting: the
    plugin no longer sets it for every project that has Hearth installed."""


@pytest.fixture(scope="session")
def tiny_gguf_bytes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from app.testing.tiny_gguf import build_tiny_model

    folder = tmp_path_factory.mktemp("hub-models")
    small = build_tiny_model(folder / "small.gguf", dtype="f16").read_bytes()
    # About 3 MB: big enough to kill a throttled transfer part-way through.
    big = build_tiny_model(folder / "big.gguf", dtype="f32", n_embd=256, n_ff=512,
                           n_layer=2, n_head=4, n_head_kv=2, seed=1).read_bytes()
    return {"small": small, "big": big}


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, hearth_home: Path,
             tiny_gguf_bytes: dict[str, bytes]) -> Iterator[FakeHub]:
    hub = FakeHub()
    small, big = tiny_gguf_bytes["small"], tiny_gguf_bytes["big"]
    hub.add_repo(FakeRepo(
        "tinyorg/Tiny-1B-GGUF",
        {"Tiny-1B-Q4_K_M.gguf": small, "Tiny-1B-Q8_0.gguf": big, "Tiny-1B-F16.gguf": small,
         "mmproj-Tiny-1B-f16.gguf": small},
        readme="# Tiny 1B\n\nA tiny model.", downloads=500, likes=3,
        last_modified="2025-03-01T00:00:00.000Z", parameters=1_000_000_000,
        tags=["gguf", "license:apache-2.0", "vision", "text-generation"]))
    hub.add_repo(FakeRepo(
        "otherorg/Tiny-Uncensored-7B-GGUF",
        {"tiny-7b-IQ4_XS-00001-of-00002.gguf": small[:4096],
         "tiny-7b-IQ4_XS-00002-of-00002.gguf": small[4096:], "tiny-7b-Q2_K.gguf": small},
        downloads=100, likes=50, last_modified="2025-05-01T00:00:00.000Z",
        tags=["gguf", "uncensored", "license:mit"]))
    hub.add_repo(FakeRepo("gated/Locked-GGUF", {"locked-Q4_0.gguf": small}, gated=True,
                          tags=["gguf"]))
    hub.add_repo(FakeRepo("plain/NotGguf", {}, tags=["transformers"]))
    hub.start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield hub
    hub.stop()


@pytest.fixture
def pool() -> Iterator[ModelPool]:
    """A serving pool of its own, shut down after the test."""
    pool = ModelPool()
    yield pool
    pool.shutdown()


@pytest.fixture
def bridge(qapp):
    """The real engine bridge (its own engine host thread), shut down after the test."""
    bridge = EngineBridge()
    yield bridge
    bridge.shutdown()


@pytest.fixture
def make_page(qtbot, hearth_store, bridge):
    """A factory for the real Chat page on `hearth_store` (or another Store)."""
    def make(store: Store = hearth_store) -> ChatPage:
        page = ChatPage(store, bridge)
        qtbot.addWidget(page)
        page.resize(1100, 700)
        page.show()
        qtbot.waitExposed(page)
        return page

    return make


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a Store test's database goes (its folder does not exist yet)."""
    return tmp_path / "data" / "hearth.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """A Store on a fresh SQLite file at `db_path`."""
    store = Store.open(db_path)
    yield store
    store.close()
