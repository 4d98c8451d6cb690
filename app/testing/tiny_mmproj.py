"""Build a tiny but real vision projector (mmproj) GGUF for tests.

The file is what llama.cpp's multimodal library (mtmd, tools/mtmd/clip.cpp) loads for the
LLaVA-1.5 projector type "mlp": a small CLIP ViT (patch embedding, class and position
embeddings, pre-norm, a few transformer blocks) and a two-layer MLP mapping image features into
the text model's embedding space. Weights are small random numbers from a seeded generator, so
an image really goes through the encoder and comes out as ``n_patches`` embeddings of the text
model's width; the tiny model then "describes" it in gibberish.

Tensor names and keys follow clip-impl.h (``v.blk.N.attn_q.weight``, ``mm.0.weight``,
``clip.vision.image_size``…). Shapes below are numpy's (rows, cols) = ggml's (ne[1], ne[0]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

# CLIP's normalisation constants, as OpenAI's CLIP preprocessor ships them.
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def image_tokens(image_size: int, patch_size: int) -> int:
    """How many embeddings (tokens in the text model's sequence) one image becomes: one per
    patch, the class token being dropped by the LLaVA projector."""
    return (image_size // patch_size) ** 2


def clip_writer(path: Path, name: str, projector_type: str, *, image_size: int,
                patch_size: int, n_embd: int, n_ff: int, n_layer: int, text_n_embd: int,
                n_head: int, eps: float) -> gguf.GGUFWriter:
    """A projector file's writer with the keys every clip.cpp vision encoder reads (F32,
    CLIP's normalisation); the caller adds its projector type's tensors."""
    writer = gguf.GGUFWriter(path, "clip")
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_string("clip.projector_type", projector_type)
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", image_size)
    writer.add_uint32("clip.vision.patch_size", patch_size)
    writer.add_uint32("clip.vision.embedding_length", n_embd)
    writer.add_uint32("clip.vision.feed_forward_length", n_ff)
    writer.add_uint32("clip.vision.block_count", n_layer)
    writer.add_uint32("clip.vision.projection_dim", text_n_embd)
    writer.add_uint32("clip.vision.attention.head_count", n_head)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", eps)
    writer.add_array("clip.vision.image_mean", list(_CLIP_MEAN))
    writer.add_array("clip.vision.image_std", list(_CLIP_STD))
    return writer


Init = Callable[..., np.ndarray]  # shape → float32 values


def add_encoder_blocks(writer: gguf.GGUFWriter, n_layer: int, n_embd: int, n_ff: int,
                       weights: Init, bias: Init) -> None:
    """The ViT's transformer blocks as clip.cpp names them: biased attention, two layer norms
    (ones and zeros), a biased feed-forward pair."""
    for i in range(n_layer):
        blk = f"v.blk.{i}"
        for part in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"{blk}.{part}.weight", weights(n_embd, n_embd))
            writer.add_tensor(f"{blk}.{part}.bias", bias(n_embd))
        for norm in ("ln1", "ln2"):
            writer.add_tensor(f"{blk}.{norm}.weight", np.ones(n_embd, dtype=np.float32))
            writer.add_tensor(f"{blk}.{norm}.bias", np.zeros(n_embd, dtype=np.float32))
        writer.add_tensor(f"{blk}.ffn_up.weight", weights(n_ff, n_embd))
        writer.add_tensor(f"{blk}.ffn_up.bias", bias(n_ff))
        writer.add_tensor(f"{blk}.ffn_down.weight", weights(n_embd, n_ff))
        writer.add_tensor(f"{blk}.ffn_down.bias", bias(n_embd))


def add_mlp_projector(writer: gguf.GGUFWriter, n_in: int, hidden: int, text_n_embd: int,
                      weights: Init, bias: Init) -> None:
    """The two-layer MLP (``mm.0``, ``mm.2``) from image features to the text model's width."""
    writer.add_tensor("mm.0.weight", weights(hidden, n_in))
    writer.add_tensor("mm.0.bias", bias(hidden))
    writer.add_tensor("mm.2.weight", weights(text_n_embd, hidden))
    writer.add_tensor("mm.2.bias", bias(text_n_embd))


def finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def build_tiny_mmproj(
    path: Path,
    *,
    text_n_embd: int = 64,
    n_embd: int = 32,
    n_head: int = 4,
    n_ff: int = 64,
    n_layer: int = 2,
    image_size: int = 64,
    patch_size: int = 16,
    proj_hidden: int = 64,
    seed: int = 0,
    name: str = "tiny-mmproj",
) -> Path:
    """Write a tiny random-weight "mlp" (LLaVA) vision projector to ``path``; return the path.

    ``text_n_embd`` must equal the embedding size of the text model it is used with (mtmd
    refuses a mismatch). ``n_layer`` must be at least 2: LLaVA takes its features from the
    second-to-last block. ``n_ff`` must differ from ``n_embd``, or clip.cpp takes the FFN
    weights for an old export with up and down swapped.
    """
    if n_layer < 2:
        raise ValueError("n_layer must be at least 2 (LLaVA reads the second-to-last block)")
    if n_ff == n_embd:
        raise ValueError("n_ff must differ from n_embd")
    if image_size % patch_size or n_embd % n_head:
        raise ValueError("image_size must divide by patch_size, and n_embd by n_head")
    path = Path(path)
    n_pos = image_tokens(image_size, patch_size) + 1  # + the class token
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * 0.02

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    writer = clip_writer(path, name, "mlp", image_size=image_size, patch_size=patch_size,
                         n_embd=n_embd, n_ff=n_ff, n_layer=n_layer, text_n_embd=text_n_embd,
                         n_head=n_head, eps=1e-5)

    # A 2-D convolution kernel: ggml ne = [patch, patch, 3, n_embd].
    writer.add_tensor("v.patch_embd.weight", weights(n_embd, 3, patch_size, patch_size))
    writer.add_tensor("v.class_embd", weights(n_embd))
    writer.add_tensor("v.position_embd.weight", weights(n_pos, n_embd))
    writer.add_tensor("v.pre_ln.weight", ones(n_embd))
    writer.add_tensor("v.pre_ln.bias", zeros(n_embd))
    add_encoder_blocks(writer, n_layer, n_embd, n_ff, weights, zeros)
    add_mlp_projector(writer, n_embd, proj_hidden, text_n_embd, weights, zeros)
    finish(writer)
    return path


@dataclass(frozen=True)
class TinyVisionModel:
    """A tiny chat model and its projector side by side, named the way Hub repos ship them."""

    model: Path
    mmproj: Path
    image_tokens: int  # embeddings one image becomes in the model's sequence


def build_tiny_vision_model(folder: Path, *, seed: int = 0) -> TinyVisionModel:
    """Write ``tiny-vl-chat-F16.gguf`` (ChatML template, n_embd 64) and
    ``mmproj-tiny-vl-chat-f32.gguf`` (64 px images, 16 px patches: 16 image tokens) in
    ``folder``."""
    from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(folder / "tiny-vl-chat-F16.gguf", dtype="f16", n_embd=64,
                             chat_template=CHATML_TEMPLATE, name="tiny-vl-chat", seed=seed)
    mmproj = build_tiny_mmproj(folder / "mmproj-tiny-vl-chat-f32.gguf", text_n_embd=64,
                               image_size=64, patch_size=16, seed=seed)
    return TinyVisionModel(model, mmproj, image_tokens(64, 16))
