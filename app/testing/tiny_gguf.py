"""Build tiny but real llama-architecture GGUF models for tests.

The files load in llama.cpp and generate (gibberish) tokens, so engine, fit and quantize tests
exercise real inference without downloading anything. Weights are small random numbers from a
seeded generator, so the same arguments always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import gguf
import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Words the tokenizer knows whole; anything else falls back to letters, then to byte tokens.
_WORDS = (
    "the a an and or but if of to in on at by for with from as is are was were be been being "
    "it its this that these those he she they we you i me my your our their his her them us "
    "not no yes do does did done have has had will would can could should may might must "
    "what which who whom whose when where why how all any some each every more most many much "
    "one two three four five six seven eight nine ten first last new old good bad big small "
    "long short high low hello world model models local chat answer question text token tokens "
    "time day year way thing man woman child people hand part place case week company system "
    "program number group problem fact say said get make go know take see come think look want "
    "give use find tell ask work seem feel try leave call run write read learn open close "
    "about over after before under again there here then than so just also very only now well"
).split()

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"-()"


def _vocab(
    extra_words: Iterable[str], chat_tokens: bool, control_tokens: Iterable[str] = ()
) -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style vocab: specials, 256 byte tokens, then word pieces.

    llama.cpp's SPM tokenizer builds words by merging adjacent pieces, so every prefix of a word
    piece must itself be a piece for the whole word to be reachable.
    """
    tokens = ["<unk>", "<s>", "</s>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    scores = [0.0, 0.0, 0.0]
    if chat_tokens:
        tokens += ["<|im_start|>", "<|im_end|>"]
        types += [gguf.TokenType.CONTROL] * 2
        scores += [0.0, 0.0]
    for text in control_tokens:
        if text not in tokens:
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL)
            scores.append(0.0)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(gguf.TokenType.BYTE)
        scores.append(0.0)

    pieces: dict[str, None] = {"▁": None}
    for ch in _ALPHABET:
        pieces[ch] = None
        pieces["▁" + ch] = None
    for word in (*_WORDS, *extra_words):
        full = "▁" + word
        for end in range(2, len(full) + 1):
            pieces[full[:end]] = None
    for piece in pieces:
        tokens.append(piece)
        types.append(gguf.TokenType.NORMAL)
        # Longer pieces win merges, so known words come out as one token.
        scores.append(float(len(piece)))
    return tokens, scores, [int(t) for t in types]


def build_tiny_model(
    path: Path,
    *,
    dtype: Literal["f32", "f16"] = "f32",
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx_train: int = 512,
    vocab_extra_words: Iterable[str] = (),
    chat_template: str | None = None,
    seed: int = 0,
    name: str = "tiny",
    control_tokens: Iterable[str] = (),
    architecture: str = "llama",
) -> Path:
    """Write a small random-weight llama GGUF model to ``path`` and return the path.

    ``control_tokens``: more control tokens for the vocabulary (e.g. "<start_of_turn>").
    ``architecture``: the name written to the header, with llama's tensors and keys under it,
    e.g. one this llama.cpp does not know."""
    if dtype not in ("f32", "f16"):
        raise ValueError(f"dtype must be 'f32' or 'f16', not {dtype!r}")
    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError("n_embd must divide by n_head, and n_head by n_head_kv")
    path = Path(path)
    head_dim = n_embd // n_head
    tokens, scores, types = _vocab(vocab_extra_words, chat_template is not None,
                                   control_tokens)
    n_vocab = len(tokens)

    rng = np.random.default_rng(seed)
    matrix_dtype = np.float16 if dtype == "f16" else np.float32

    def matrix(rows: int, cols: int) -> np.ndarray:
        # numpy shape is (rows, cols) = ggml ne[1], ne[0]; a small scale keeps activations finite.
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(matrix_dtype)

    def ones(n: int) -> np.ndarray:
        # llama.cpp keeps 1-D tensors (norms) in F32 whatever the file type.
        return np.ones(n, dtype=np.float32)

    writer = gguf.GGUFWriter(path, architecture)
    writer.add_name(name)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32
    )
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(n_ctx_train)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
        writer.add_eot_token_id(tokens.index("<|im_end|>"))

    writer.add_tensor("token_embd.weight", matrix(n_vocab, n_embd))
    for i in range(n_layer):
        blk = f"blk.{i}"
        writer.add_tensor(f"{blk}.attn_norm.weight", ones(n_embd))
        writer.add_tensor(f"{blk}.attn_q.weight", matrix(n_head * head_dim, n_embd))
        writer.add_tensor(f"{blk}.attn_k.weight", matrix(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"{blk}.attn_v.weight", matrix(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"{blk}.attn_output.weight", matrix(n_embd, n_head * head_dim))
        writer.add_tensor(f"{blk}.ffn_norm.weight", ones(n_embd))
        writer.add_tensor(f"{blk}.ffn_gate.weight", matrix(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_up.weight", matrix(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_down.weight", matrix(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", ones(n_embd))
    writer.add_tensor("output.weight", matrix(n_vocab, n_embd))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def truncate_copy(src: Path, dst: Path, keep_fraction: float = 0.5) -> Path:
    """Copy the first ``keep_fraction`` of ``src`` to ``dst``, like an interrupted download."""
    if not 0.0 <= keep_fraction < 1.0:
        raise ValueError("keep_fraction must be in [0, 1)")
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


def build_test_imatrix(model: Path, dest: Path, seed: int = 0) -> Path:
    """Write a random but valid importance matrix for ``model``: one entry per matrix-multiply
    weight, sized to its input dimension, as llama-imatrix collects them (token_embd is a row
    lookup, so it has none and needs none)."""
    from app.engine.quantize.imatrix import write_imatrix

    reader = gguf.GGUFReader(model)
    weights = {t.name: int(t.shape[0]) for t in reader.tensors
               if len(t.shape) == 2 and t.name != "token_embd.weight"}
    del reader  # releases its memory map of the model
    rng = np.random.default_rng(seed)
    sums = {name: rng.uniform(0.5, 2.0, n_cols) * 64 for name, n_cols in weights.items()}
    return write_imatrix(dest, sums, dict.fromkeys(sums, 64))
