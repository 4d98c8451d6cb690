"""The tiny vision projector the test plugin builds is one llama.cpp's mtmd really loads."""

from __future__ import annotations

import pytest

from app.engine.gguf.info import read_model_info
from app.engine.inference.runtime import Runtime
from app.engine.types import LoadSettings
from app.engine.vision.projector import Projector, ProjectorError
from app.testing.tiny_gguf import build_tiny_model, truncate_copy


def test_mtmd_loads_the_tiny_projector_with_its_model_and_reports_vision(tiny_vision_model):
    runtime = Runtime(tiny_vision_model.model, LoadSettings(n_ctx=256, n_threads=1))
    try:
        with Projector(tiny_vision_model.mmproj, runtime._model, n_threads=1,
                       use_gpu=False) as projector:
            assert projector.supports_vision
            assert projector.marker == "<__media__>"
    finally:
        runtime.close()


def test_the_tiny_projector_is_a_clip_file_not_a_language_model(tiny_vision_model):
    assert read_model_info(tiny_vision_model.mmproj).architecture == "clip"
    assert read_model_info(tiny_vision_model.model).architecture == "llama"


def test_a_projector_for_another_embedding_size_is_refused_with_the_reason(
    tiny_vision_model, tmp_path
):
    wider = build_tiny_model(tmp_path / "wide.gguf", n_embd=128, n_head=4, n_head_kv=2)
    runtime = Runtime(wider, LoadSettings(n_ctx=256, n_threads=1))
    try:
        with pytest.raises(ProjectorError, match=r"mismatch.*n_embd = 128.*n_embd = 64"):
            Projector(tiny_vision_model.mmproj, runtime._model, n_threads=1, use_gpu=False)
    finally:
        runtime.close()


@pytest.mark.parametrize("damage", ["truncated", "a language model", "not gguf"])
def test_a_bad_projector_file_is_refused_not_a_crash(tiny_vision_model, tmp_path, damage):
    bad = tmp_path / "mmproj-bad-f16.gguf"
    if damage == "truncated":
        truncate_copy(tiny_vision_model.mmproj, bad, 0.6)
    elif damage == "a language model":
        bad.write_bytes(tiny_vision_model.model.read_bytes())
    else:
        bad.write_text("not a projector at all\n" * 50)
    runtime = Runtime(tiny_vision_model.model, LoadSettings(n_ctx=256, n_threads=1))
    try:
        with pytest.raises(ProjectorError, match="Cannot use the vision projector mmproj-bad"):
            Projector(bad, runtime._model, n_threads=1, use_gpu=False)
    finally:
        runtime.close()
