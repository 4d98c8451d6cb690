"""A model finds its vision projector (mmproj) beside it, on file layouts as Hub repos ship them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.gguf.projector_pairing import pair_folder
from app.services.library import import_path, projector_for


@pytest.fixture
def layout(tmp_path, tiny_vision_model, tiny_model):
    """``layout({"name.gguf": "model" | "mmproj" | "text"})`` fills a fresh folder with real
    tiny files: a vision model, its projector, or a text-only model."""
    sources = {"model": tiny_vision_model.model, "mmproj": tiny_vision_model.mmproj,
               "text": tiny_model}
    count = 0

    def make(files: dict[str, str]) -> Path:
        nonlocal count
        count += 1
        folder = tmp_path / f"repo{count}"
        folder.mkdir()
        for name, kind in files.items():
            shutil.copyfile(sources[kind], folder / name)
        return folder

    return make


def test_gemma_style_repo_one_generic_projector_for_every_quant(layout):
    folder = layout({"gemma-3-4b-it-Q4_K_M.gguf": "model", "gemma-3-4b-it-Q8_0.gguf": "model",
                     "mmproj-model-f16.gguf": "mmproj"})
    projector = folder / "mmproj-model-f16.gguf"
    assert projector_for(folder / "gemma-3-4b-it-Q4_K_M.gguf") == projector
    assert projector_for(folder / "gemma-3-4b-it-Q8_0.gguf") == projector


def test_qwen_style_projector_named_after_the_model(layout):
    folder = layout({"Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf": "model",
                     "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf": "mmproj"})
    assert projector_for(folder / "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf") == (
        folder / "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf")


def test_two_models_projectors_in_one_folder_match_by_name(layout):
    folder = layout({
        "google_gemma-3-4b-it-Q4_K_M.gguf": "model",
        "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf": "model",
        "Qwen2.5-VL-3B-Instruct-Q6_K.gguf": "model",
        "mmproj-google_gemma-3-4b-it-f16.gguf": "mmproj",
        "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf": "mmproj",
        "llama-3.2-3b-instruct-Q4_K_M.gguf": "text",
    })
    pairing = pair_folder(folder)
    assert {m.name: (p.name if p else None) for m, p in pairing.models.items()} == {
        "google_gemma-3-4b-it-Q4_K_M.gguf": "mmproj-google_gemma-3-4b-it-f16.gguf",
        "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf": "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf",
        "Qwen2.5-VL-3B-Instruct-Q6_K.gguf": "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf",
        "llama-3.2-3b-instruct-Q4_K_M.gguf": None,
    }
    assert len(pairing.projectors) == 2


def test_several_precisions_of_one_projector_prefer_f16(layout):
    folder = layout({"gemma-3-4b-it-Q4_K_M.gguf": "model", "mmproj-BF16.gguf": "mmproj",
                     "mmproj-F32.gguf": "mmproj", "mmproj-F16.gguf": "mmproj"})
    assert projector_for(folder / "gemma-3-4b-it-Q4_K_M.gguf") == folder / "mmproj-F16.gguf"


def test_a_more_specific_projector_name_wins(layout):
    folder = layout({"gemma-3-4b-it-qat-Q4_0.gguf": "model", "gemma-3-4b-it-Q4_0.gguf": "model",
                     "mmproj-gemma-3-4b-it-f16.gguf": "mmproj",
                     "mmproj-gemma-3-4b-it-qat-f16.gguf": "mmproj"})
    assert projector_for(folder / "gemma-3-4b-it-qat-Q4_0.gguf").name == (
        "mmproj-gemma-3-4b-it-qat-f16.gguf")
    assert projector_for(folder / "gemma-3-4b-it-Q4_0.gguf").name == (
        "mmproj-gemma-3-4b-it-f16.gguf")


def test_a_repo_projector_spelled_differently_still_pairs(layout):
    folder = layout({"gemma-3-4b-it-Q4_K_M.gguf": "model", "mmproj-gemma3-f16.gguf": "mmproj"})
    assert projector_for(folder / "gemma-3-4b-it-Q4_K_M.gguf").name == "mmproj-gemma3-f16.gguf"


def test_the_header_decides_not_the_name(layout):
    # A projector without "mmproj" in its name, and a model whose name mentions vision.
    folder = layout({"vision-tower-f16.gguf": "mmproj", "tiny-vision-chat-Q8_0.gguf": "model",
                     "plain-Q4_K_M.gguf": "text"})
    pairing = pair_folder(folder)
    assert pairing.projectors == (folder / "vision-tower-f16.gguf",)
    assert set(pairing.models) == {folder / "tiny-vision-chat-Q8_0.gguf",
                                   folder / "plain-Q4_K_M.gguf"}


def test_a_model_alone_and_a_damaged_projector_have_no_pair(layout):
    folder = layout({"Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf": "model"})
    assert projector_for(folder / "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf") is None
    broken = folder / "mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 10)
    assert projector_for(folder / "Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf") is None
    assert pair_folder(folder).unreadable == (broken,)


def test_importing_a_folder_indexes_models_and_skips_every_projector(hearth_store, layout):
    folder = layout({"Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf": "model",
                     "vision-tower-f16.gguf": "mmproj", "mmproj-model-f16.gguf": "mmproj"})
    report = import_path(hearth_store, folder)
    assert [Path(r.path).name for r in report.added] == ["Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf"]
    assert sum("vision projector" in line for line in report.skipped) == 2


@pytest.mark.parametrize("model,projector", [
    ("Qwen2.5-VL-7B-Instruct-Q4_K_M.gguf", "Qwen2.5-VL-7B-Instruct-mmproj-f16.gguf"),
    ("Qwen2.5-VL-7B-Instruct-Q4_K_M.gguf", "mmproj-Qwen2.5-VL-7B-Instruct-Q8_0.gguf"),
    ("llava-v1.6-mistral-7b.Q4_K_M.gguf", "mmproj-model-f16.gguf"),
    ("gemma-3-27b-it-UD-Q4_K_XL-00001-of-00002.gguf", "mmproj-gemma-3-27b-it-BF16.gguf"),
    ("SmolVLM-500M-Instruct-Q8_0.gguf", "SmolVLM_500M_Instruct_mmproj_f16.gguf"),
])
def test_projector_naming_styles_seen_on_the_hub_pair(layout, model, projector):
    folder = layout({model: "model", projector: "mmproj",
                     "mmproj-Some-Other-Model-f16.gguf": "mmproj"})
    assert projector_for(folder / model) == folder / projector
