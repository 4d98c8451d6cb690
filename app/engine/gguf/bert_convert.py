"""Convert a Hugging Face BERT sentence-embedding model (safetensors) to a GGUF llama.cpp loads.

Only ``gguf``, ``safetensors`` and ``numpy``: no torch, no transformers. The source folder is
untrusted (it may be a download), so every hyper-parameter, token and tensor shape is checked
before anything is written, and the GGUF is written under a ``.part`` name and renamed only when
complete: a refused or interrupted conversion leaves no file under the final name.

What llama.cpp's BERT expects (its own convert_hf_to_gguf.py ``BertModel`` does the same):
- ``general.architecture=bert`` with ``bert.*`` hyper-parameters, non-causal attention and the
  sentence-transformers pooling (``bert.pooling_type``);
- ``tokenizer.ggml.model=bert`` with the WordPiece vocabulary in "phantom space" form: llama.cpp
  prefixes every word with U+2581 and matches pieces greedily, so a word-start token ``cat``
  becomes ``▁cat``, a continuation ``##s`` becomes ``s``, and control tokens stay as they are;
- tensor names from gguf's BERT name map; 2-D weights F16, everything else F32, except the
  position and token-type embeddings, which llama.cpp reads as F32.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

__all__ = ["BertConfig", "ConvertError", "FORMAT_REVISION", "convert_bert", "read_bert_config"]

# Bumped whenever the GGUF this module writes changes, so cached conversions are redone.
FORMAT_REVISION = 1

_PHANTOM_SPACE = "\u2581"
_SKIPPED = ("embeddings.position_ids", "pooler.", "cls.")
_KEEP_F32 = ("position_embd", "token_types")
_LAYER_PARTS = (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "attention.output.LayerNorm",
    "intermediate.dense", "output.dense", "output.LayerNorm",
)
_POOLING = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS}
_MAX_DIM = 1 << 16  # no BERT comes near; a bigger number in config.json is corrupt or hostile


class ConvertError(ValueError):
    """The source model cannot be converted; the message is meant for the user."""


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    n_layers: int
    n_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pooling: str  # "mean" | "cls"


def read_bert_config(model_dir: Path) -> BertConfig:
    """The checked hyper-parameters of the BERT model in ``model_dir``."""
    cfg = _read_json(Path(model_dir) / "config.json")
    if cfg.get("model_type") != "bert":
        raise ConvertError(f"config.json describes a {str(cfg.get('model_type'))[:40]!r} "
                           "model, not a BERT model")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ConvertError("only BERT models with absolute position embeddings are supported")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ConvertError("only BERT models with the GELU activation are supported")

    def dim(key: str, default: int | None = None) -> int:
        value = cfg.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_DIM:
            raise ConvertError(f"config.json: {key} must be a positive whole number, "
                               f"not {str(value)[:40]!r}")
        return value

    hidden, heads = dim("hidden_size"), dim("num_attention_heads")
    if hidden % heads:
        raise ConvertError("config.json: hidden_size is not a multiple of num_attention_heads")
    eps = cfg.get("layer_norm_eps", 1e-12)
    if not isinstance(eps, int | float) or not 0 < eps < 1:
        raise ConvertError("config.json: layer_norm_eps must be a small positive number")
    return BertConfig(
        vocab_size=dim("vocab_size"), hidden_size=hidden, n_layers=dim("num_hidden_layers"),
        n_heads=heads, intermediate_size=dim("intermediate_size"),
        max_positions=dim("max_position_embeddings"),
        type_vocab_size=dim("type_vocab_size", 2), layer_norm_eps=float(eps),
        pooling=_read_pooling(Path(model_dir)),
    )


def convert_bert(model_dir: Path, dest: Path, *, name: str = "") -> Path:
    """Write ``model_dir`` (config.json, tokenizer.json or vocab.txt, model.safetensors and the
    sentence-transformers pooling config) as the GGUF ``dest`` and return ``dest``.

    Raises `ConvertError` for a source it cannot convert; ``dest`` is then left untouched.
    """
    model_dir, dest = Path(model_dir), Path(dest)
    config = read_bert_config(model_dir)
    tokens, control = _read_vocab(model_dir, config.vocab_size)
    tensors = _read_tensors(model_dir / "model.safetensors", config)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer = gguf.GGUFWriter(part, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
        try:
            _write_metadata(writer, config, tokens, control, name or model_dir.name)
            for gguf_name, array in tensors:
                writer.add_tensor(gguf_name, array)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def phantom_token(token: str, is_control: bool) -> str:
    """A WordPiece token as llama.cpp's BERT vocabulary spells it."""
    if is_control:
        return token
    return token[2:] if token.startswith("##") else _PHANTOM_SPACE + token


# -- reading the source ----------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConvertError(f"{path.name} is missing from {path.parent}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvertError(f"{path.name} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ConvertError(f"{path.name} is not a JSON object")
    return data


def _read_pooling(model_dir: Path) -> str:
    """sentence-transformers' pooling mode; mean (its default) when the folder names none."""
    pooling_dir = "1_Pooling"
    modules = model_dir / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
            pooling_dir = next(str(m["path"]) for m in entries
                               if str(m.get("type", "")).endswith(".Pooling"))
        except (OSError, ValueError, TypeError, KeyError, StopIteration) as exc:
            raise ConvertError(f"modules.json names no pooling module: {exc!r}") from exc
    pooling_file = (model_dir / pooling_dir / "config.json").resolve()
    if not pooling_file.is_relative_to(model_dir.resolve()):
        raise ConvertError("modules.json points outside the model folder")
    if not pooling_file.is_file():
        return "mean"
    cfg = _read_json(pooling_file)
    keys = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token",
            "max": "pooling_mode_max_tokens", "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens"}
    modes = [mode for mode, key in keys.items() if cfg.get(key) is True]
    if len(modes) != 1 or modes[0] not in _POOLING:
        raise ConvertError(f"unsupported pooling {modes or 'none'}: llama.cpp pools BERT "
                           "embeddings by mean or by the CLS token")
    return modes[0]


def _read_vocab(model_dir: Path, vocab_size: int) -> tuple[list[str], set[int]]:
    """Tokens in id order, and the ids of control (special) tokens."""
    tokenizer_json = model_dir / "tokenizer.json"
    if tokenizer_json.is_file():
        data = _read_json(tokenizer_json)
        model = data.get("model")
        if not isinstance(model, dict) or model.get("type") != "WordPiece":
            raise ConvertError("tokenizer.json is not a WordPiece tokenizer")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict):
            raise ConvertError("tokenizer.json has no vocabulary")
        control = {t.get("id") for t in data.get("added_tokens", [])
                   if isinstance(t, dict) and t.get("special")}
    else:
        try:
            lines = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConvertError(f"no readable tokenizer.json or vocab.txt in {model_dir}") from exc
        vocab = {token: i for i, token in enumerate(lines)}
        control = {i for token, i in vocab.items() if token.startswith("[") and token.endswith("]")
                   and not token.startswith("[unused")}
    tokens: list[str | None] = [None] * vocab_size
    for token, index in vocab.items():
        if not isinstance(token, str) or not token or not isinstance(index, int) \
                or not 0 <= index < vocab_size or tokens[index] is not None:
            raise ConvertError(f"the vocabulary does not match config.json's vocab_size "
                               f"{vocab_size} (token id {str(index)[:20]})")
        tokens[index] = token
    if None in tokens:
        raise ConvertError(f"the vocabulary has {len(vocab)} tokens, config.json says "
                           f"{vocab_size}")
    return [t for t in tokens if t is not None], {i for i in control if isinstance(i, int)}


def _expected_shapes(c: BertConfig) -> dict[str, tuple[int, ...]]:
    h, ff = c.hidden_size, c.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (c.vocab_size, h),
        "embeddings.position_embeddings.weight": (c.max_positions, h),
        "embeddings.token_type_embeddings.weight": (c.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    rows = {"intermediate.dense": ff}
    cols = {"output.dense": ff}
    for layer in range(c.n_layers):
        for part in _LAYER_PARTS:
            prefix = f"encoder.layer.{layer}.{part}"
            if part.endswith("LayerNorm"):
                shapes[f"{prefix}.weight"] = (h,)
            else:
                shapes[f"{prefix}.weight"] = (rows.get(part, h), cols.get(part, h))
            shapes[f"{prefix}.bias"] = (rows.get(part, h),)
    return shapes


def _source_name(name: str) -> str | None:
    """The name without the ``bert.`` prefix some checkpoints carry; None: not needed."""
    name = name.removeprefix("bert.")
    if name.endswith(".gamma"):  # old TF-converted checkpoints
        name = name[:-6] + ".weight"
    elif name.endswith(".beta"):
        name = name[:-5] + ".bias"
    return None if name.startswith(_SKIPPED) else name


def _read_tensors(path: Path, config: BertConfig) -> list[tuple[str, np.ndarray]]:
    try:  # an optional dependency (the `starter` extra): only conversion needs it
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise ConvertError("Converting needs the safetensors package: "
                           "pip install safetensors") from None

    expected = _expected_shapes(config)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, config.n_layers)
    found: dict[str, np.ndarray] = {}
    if not path.is_file():
        raise ConvertError(f"{path.name} is missing from {path.parent}")
    try:
        with safe_open(str(path), framework="np") as weights:
            for key in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                name = _source_name(key)
                if name is None:
                    continue
                if name not in expected:
                    raise ConvertError(f"{path.name} has an unexpected tensor {key[:80]!r}")
                found[name] = _checked(weights.get_tensor(key), name, expected[name])
    except ConvertError:
        raise
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ConvertError(f"{path.name} is not a readable safetensors file: {exc}") from exc
    missing = [name for name in expected if name not in found]
    if missing:
        raise ConvertError(f"{path.name} lacks {len(missing)} tensors of this BERT, "
                           f"e.g. {missing[0]!r}")
    return list(_gguf_tensors(found, name_map))


def _checked(array: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if array.dtype not in (np.float32, np.float16):
        raise ConvertError(f"tensor {name!r} is {array.dtype}; only F32 and F16 are supported")
    if tuple(array.shape) != shape:
        raise ConvertError(f"tensor {name!r} has shape {tuple(array.shape)}, "
                           f"config.json implies {shape}")
    if not np.isfinite(array).all():
        raise ConvertError(f"tensor {name!r} holds NaN or infinite values")
    return array


def _gguf_tensors(found: dict[str, np.ndarray],
                  name_map: gguf.TensorNameMap) -> Iterator[tuple[str, np.ndarray]]:
    for name, array in found.items():
        gguf_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:  # a shape-checked name gguf cannot place: a bug here, not input
            raise ConvertError(f"no GGUF name for tensor {name!r}")
        f32 = array.ndim == 1 or gguf_name.startswith(_KEEP_F32)
        yield gguf_name, np.ascontiguousarray(array, dtype=np.float32 if f32 else np.float16)


def _write_metadata(writer: gguf.GGUFWriter, c: BertConfig, tokens: list[str],
                    control: set[int], name: str) -> None:
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(c.max_positions)
    writer.add_embedding_length(c.hidden_size)
    writer.add_block_count(c.n_layers)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.n_heads)
    writer.add_layer_norm_eps(c.layer_norm_eps)
    writer.add_causal_attention(False)
    writer.add_pooling_type(_POOLING[c.pooling])

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom_token(t, i in control) for i, t in enumerate(tokens)])
    writer.add_token_types([gguf.TokenType.CONTROL if i in control else gguf.TokenType.NORMAL
                            for i in range(len(tokens))])
    writer.add_token_type_count(c.type_vocab_size)
    ids = {t: i for i, t in enumerate(tokens)}
    # llama.cpp's WordPiece uses BOS as [CLS] and SEP as the end marker.
    for token, add in (("[CLS]", writer.add_bos_token_id), ("[SEP]", writer.add_sep_token_id),
                       ("[UNK]", writer.add_unk_token_id), ("[PAD]", writer.add_pad_token_id),
                       ("[MASK]", writer.add_mask_token_id)):
        if token in ids:
            add(ids[token])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)
