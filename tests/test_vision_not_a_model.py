"""A vision projector (mmproj) is not a model: the CLI, the engine and the server refuse to
load, chat with or list one, and say which model it loads with."""

from __future__ import annotations

import json
import queue
import shutil

import httpx
import openai
import pytest

from app.cli import main
from app.engine.gguf.info import read_model_info
from app.engine.inference.events import Failed, Loaded
from app.engine.serving.host import EngineHost
from app.engine.serving.pool import LoadError, ModelPool
from app.engine.types import LoadSettings

PROJECTOR = "mmproj-tiny-vl-chat-f32.gguf"
MODEL = "tiny-vl-chat-F16.gguf"


def _says_projector(message: str, model: str | None = MODEL) -> None:
    assert PROJECTOR in message and "is a vision projector (mmproj)" in message
    assert "not a language model" in message
    if model is not None:
        assert f"Load its model instead ({model}, beside it)" in message
    assert "CLIP cannot be used" not in message and "Traceback" not in message


@pytest.fixture
def lone_projector(tiny_vision_model, tmp_path):
    """The projector copied into a folder with no model beside it."""
    return shutil.copy(tiny_vision_model.mmproj, tmp_path / PROJECTOR)


def test_serve_refuses_a_projector_as_a_model_and_names_its_model(hearth_home,
                                                                   tiny_vision_model, capsys):
    code = main(["serve", "--port", "0", "--model", str(tiny_vision_model.mmproj)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith("hearth serve: ")
    _says_projector(captured.err)
    assert "Loaded" not in captured.err


def test_chat_refuses_a_projector_and_says_where_its_model_would_be(
    hearth_home, tiny_vision_model, lone_projector, capsys
):
    assert main(["chat", str(tiny_vision_model.mmproj), "--prompt", "hi"]) == 1
    _says_projector(capsys.readouterr().err)

    assert main(["chat", str(lone_projector), "--prompt", "hi"]) == 1
    err = capsys.readouterr().err
    _says_projector(err, model=None)
    assert "Load the vision model it belongs to instead" in err


def test_info_describes_a_projector_without_a_models_memory_estimate(tiny_vision_model,
                                                                     capsys):
    assert main(["info", str(tiny_vision_model.mmproj)]) == 0
    out = capsys.readouterr().out
    assert "Architecture:  clip" in out and "Memory at" not in out
    _says_projector(out)

    assert main(["info", "--json", str(tiny_vision_model.mmproj)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["vision_projector"] is True and data["architecture_supported"] is False
    assert data["paired_models"] == [str(tiny_vision_model.model)]


def test_the_engine_refuses_to_load_a_projector_with_a_clear_load_error(tiny_vision_model):
    pool = ModelPool()
    try:
        with pytest.raises(LoadError) as info:
            pool.load("mmproj", tiny_vision_model.mmproj, LoadSettings(n_ctx=256, n_threads=1))
        _says_projector(str(info.value))
        assert pool.models() == []
    finally:
        pool.shutdown()


def test_the_window_hears_why_a_projector_cannot_be_loaded(tiny_vision_model):
    events: queue.Queue = queue.Queue()
    host = EngineHost(events.put)
    try:
        job = host.load(tiny_vision_model.mmproj, LoadSettings(n_ctx=256, n_threads=1))
        while True:
            event = events.get(timeout=30)
            if event.job_id == job and isinstance(event, Failed | Loaded):
                break
        assert isinstance(event, Failed)
        _says_projector(event.message)
        assert host.loaded_path is None
    finally:
        host.shutdown()


def test_the_server_never_lists_or_serves_a_projector(make_hearth_server, hearth_store,
                                                      tiny_vision_model):
    # As a library indexed before projectors were told apart would hold them.
    hearth_store.add_model_file(read_model_info(tiny_vision_model.model))
    hearth_store.add_model_file(read_model_info(tiny_vision_model.mmproj))
    server = make_hearth_server(models=[])

    ids = [m.id for m in server.client.models.list().data]
    assert "tiny-vl-chat-f16" in ids
    assert not any("mmproj" in model_id for model_id in ids)
    lm_studio = httpx.get(f"{server.base_url}/api/v0/models").json()["data"]
    assert [m for m in lm_studio if m["arch"] == "clip"] == []
    vision = next(m for m in lm_studio if m["id"] == "tiny-vl-chat-f16")
    assert vision["capabilities"] == ["vision"]

    with pytest.raises(openai.NotFoundError):
        server.client.chat.completions.create(
            model="mmproj-tiny-vl-chat-f32", max_tokens=2,
            messages=[{"role": "user", "content": "hi"}])
    assert server.pool.models() == []
