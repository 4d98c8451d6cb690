"""A tiny Qwen2-VL pair for tests: a text model with M-RoPE and its "qwen2vl_merger" projector.

Qwen-VL models place an image on a 2-D grid of positions: its ``n_tokens`` embeddings advance
the sequence by only ``n_pos`` positions (the grid's longer side), so the text after an image
sits at a position other than its index. This pair lets tests check that path against llama.cpp's
own mtmd helper. Random weights, seeded; the shapes follow clip.cpp's qwen2vl graph (two patch
convolutions, no class or position embedding, biased attention, a 2×2 patch merger MLP).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

from app.testing.tiny_gguf import CHATML_TEMPLATE, build_tiny_model
from app.testing.tiny_mmproj import (
    TinyVisionModel,
    add_encoder_blocks,
    add_mlp_projector,
    clip_writer,
    finish,
)


def _add_keys(path: Path, extra: dict[str, tuple[object, gguf.GGUFValueType,
                                                 gguf.GGUFValueType | None]]) -> None:
    """Rewrite the GGUF at ``path`` with ``extra`` keys (name → value, type, item type)."""
    reader = gguf.GGUFReader(path)
    arch = reader.fields["general.architecture"].contents()
    tmp = path.with_suffix(".tmp")
    writer = gguf.GGUFWriter(tmp, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub)
    for name, (value, vtype, sub) in extra.items():
        writer.add_key_value(name, value, vtype, sub)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, np.array(tensor.data),
                          raw_shape=list(reversed(tensor.shape.tolist())),
                          raw_dtype=tensor.tensor_type)
    finish(writer)
    del reader
    tmp.replace(path)


def build_tiny_qwen2vl_mmproj(path: Path, *, text_n_embd: int = 64, n_embd: int = 32,
                              n_head: int = 4, n_ff: int = 64, n_layer: int = 2,
                              patch_size: int = 4, proj_hidden: int = 64,
                              seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) * 0.02

    writer = clip_writer(path, "tiny-qwen2vl-mmproj", "qwen2vl_merger", image_size=64,
                         patch_size=patch_size, n_embd=n_embd, n_ff=n_ff, n_layer=n_layer,
                         text_n_embd=text_n_embd, n_head=n_head, eps=1e-6)
    writer.add_tensor("v.patch_embd.weight", weights(n_embd, 3, patch_size, patch_size))
    writer.add_tensor("v.patch_embd.weight.1", weights(n_embd, 3, patch_size, patch_size))
    add_encoder_blocks(writer, n_layer, n_embd, n_ff, weights, weights)
    add_mlp_projector(writer, n_embd * 4, proj_hidden, text_n_embd,  # 2×2 patches merged
                      weights, weights)
    finish(writer)
    return path


def build_tiny_qwen2vl(folder: Path, *, seed: int = 0) -> TinyVisionModel:
    """``Tiny-Qwen2-VL-F16.gguf`` (architecture qwen2vl, M-RoPE, ChatML) and
    ``mmproj-Tiny-Qwen2-VL-f32.gguf`` in ``folder``. A 48 px image becomes 36 tokens on a
    6 × 6 grid (4 px patches merged 2 × 2): 36 tokens, 6 positions."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(folder / "Tiny-Qwen2-VL-F16.gguf", dtype="f16", n_embd=64,
                             chat_template=CHATML_TEMPLATE, name="tiny-qwen2vl", seed=seed,
                             architecture="qwen2vl",
                             control_tokens=["<|vision_start|>", "<|vision_end|>"])
    # Qwen2-VL's text rotary sections (time, height, width, unused) over head_dim / 2 = 8.
    _add_keys(model, {"qwen2vl.rope.dimension_sections": (
        [2, 3, 3, 0], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32)})
    mmproj = build_tiny_qwen2vl_mmproj(folder / "mmproj-Tiny-Qwen2-VL-f32.gguf", seed=seed)
    return TinyVisionModel(model, mmproj, 36)
