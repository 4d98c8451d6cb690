"""A model whose architecture this llama.cpp does not know is named as such everywhere, and other
load failures show llama.cpp's own reason (issue 9, unsupported models)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.cli import main
from app.engine.gguf.info import read_model_info
from app.engine.inference.arch_support import architecture_supported
from app.engine.inference.events import Failed, Loaded
from app.engine.inference.runtime import LoadError, Runtime
from app.engine.serving.host import EngineHost
from app.engine.types import LoadSettings
from app.testing.tiny_gguf import build_tiny_model

UNSUPPORTED = "architecture 'hearthnet-x' is not supported by this llama.cpp build"


@pytest.fixture(scope="module")
def future_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A well-formed GGUF of an architecture from a newer llama.cpp (here: a made-up one)."""
    return build_tiny_model(tmp_path_factory.mktemp("arch") / "future.gguf",
                            architecture="hearthnet-x", name="future")


def test_known_and_unknown_architectures_are_told_apart() -> None:
    assert architecture_supported("llama") and architecture_supported("gemma3")
    assert architecture_supported("qwen2") and architecture_supported("bert")
    assert not architecture_supported("hearthnet-x")


def test_a_hostile_architecture_name_is_shown_harmlessly(tmp_path: Path) -> None:
    hostile = build_tiny_model(tmp_path / "hostile.gguf", architecture="x\x1b]0;pwned\x07" * 20)
    with pytest.raises(LoadError) as error:
        Runtime(hostile, LoadSettings(n_ctx=256))
    message = str(error.value)
    assert "is not supported by this llama.cpp build" in message
    assert "\x1b" not in message and "\x07" not in message and len(message) < 250


def test_loading_names_the_architecture(future_model: Path) -> None:
    with pytest.raises(LoadError, match=UNSUPPORTED):
        Runtime(future_model, LoadSettings(n_ctx=256))


def test_the_engine_reports_it_as_a_failed_load(future_model: Path) -> None:
    events: list[object] = []
    host = EngineHost(events.append)
    try:
        host.load(future_model, LoadSettings(n_ctx=256))
        deadline = time.monotonic() + 30
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        host.shutdown()
    failed = [e for e in events if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].kind == "load"
    assert UNSUPPORTED in failed[0].message and "failed to load model" not in failed[0].message
    assert not any(isinstance(e, Loaded) for e in events)


def test_another_load_failure_shows_llama_cpps_reason(tmp_path: Path) -> None:
    # A known architecture whose tensors do not match it (llama's tensors under "gemma3").
    wrong = build_tiny_model(tmp_path / "wrong-tensors.gguf", architecture="gemma3")
    with pytest.raises(LoadError) as error:
        Runtime(wrong, LoadSettings(n_ctx=256))
    message = str(error.value)
    assert message.startswith("llama.cpp could not load the model wrong-tensors.gguf: ")
    assert "tensor 'blk.0.post_attention_norm.weight' not found" in message
    assert not message.endswith("failed to load model")


def test_hearth_info_says_so(future_model: Path, tiny_model: Path, capsys) -> None:
    assert main(["info", str(future_model)]) == 0
    out = capsys.readouterr().out
    assert "Architecture:  hearthnet-x" in out
    assert f"Cannot be loaded: {UNSUPPORTED}" in out
    assert main(["info", str(future_model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["architecture_supported"] is False
    assert main(["info", str(tiny_model)]) == 0
    assert "Cannot be loaded" not in capsys.readouterr().out


def test_my_models_says_so(qtbot, hearth_store, future_model: Path, tiny_model: Path) -> None:
    from app.ui.models.page import ModelsPage
    from app.ui.workers import TaskRunner

    hearth_store.add_model_file(read_model_info(future_model), "import")
    hearth_store.add_model_file(read_model_info(tiny_model), "import")
    tasks = TaskRunner()
    page = ModelsPage(hearth_store, tasks)
    qtbot.addWidget(page)
    model = page.table_model
    from app.ui.models.columns import COLUMNS

    arch_column = [c.header for c in COLUMNS].index("Architecture")
    shown = {model.record(r).path: model.index(r, arch_column).data()
             for r in range(model.rowCount())}
    assert shown == {str(future_model): "hearthnet-x (not supported)", str(tiny_model): "llama"}
    assert page.select_path(str(future_model))
    assert page.details.toPlainText().startswith(f"Cannot be loaded: {UNSUPPORTED}")
    assert page.select_path(str(tiny_model))
    assert "Cannot be loaded" not in page.details.toPlainText()
    assert tasks.shutdown()
