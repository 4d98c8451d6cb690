"""`hearth info FILE`: what a GGUF file says about its model, and the memory it would need."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.engine.types import ModelInfo


def add_parser(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="show a GGUF file's metadata",
                          description="Show what a GGUF file says about its model, "
                          "without loading the weights.")
    info.add_argument("file", metavar="FILE", help="path to a .gguf file")
    info.add_argument("--json", action="store_true", help="print the metadata as JSON")
    info.add_argument("--ctx", type=int, metavar="N",
                      help="context length for the RAM/VRAM estimate (default 4096)")
    info.add_argument("--kv-type", choices=("f16", "q8_0", "q4_0"), default="f16",
                      help="KV-cache type for the estimate")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.engine.gguf.info import GGUFError, format_model_info, read_model_info

    try:
        info = read_model_info(args.file)
    except GGUFError as exc:
        print(f"hearth info: {exc}", file=sys.stderr)
        return 1
    from app.engine.inference.arch_support import architecture_supported, unsupported_message
    from app.engine.sizing.memory_estimate import estimate_memory, format_estimate
    from app.engine.types import LoadSettings
    from app.engine.vision.not_a_model import is_projector_architecture

    settings = LoadSettings(n_ctx=args.ctx or LoadSettings().n_ctx, kv_cache_type=args.kv_type)
    if is_projector_architecture(info.architecture):
        return _projector(args, info)
    supported = architecture_supported(info.architecture)
    if args.json:
        data = info.to_dict()
        data["architecture_supported"] = supported
        if args.ctx:
            est = estimate_memory(info, settings, [])
            data["memory_estimate"] = {"n_ctx": est.n_ctx, "ram_bytes_cpu_only": est.ram_bytes,
                                       "breakdown": est.breakdown()}
        print(json.dumps(data, indent=2))
    else:
        from app.cli.terminal_text import terminal_safe

        print(terminal_safe(format_model_info(info)))  # GGUF metadata is untrusted
        if not supported:
            print(f"Cannot be loaded: {unsupported_message(info.architecture)}.")
        print(format_estimate(info, settings))
    return 0


def _projector(args: argparse.Namespace, info: ModelInfo) -> int:
    """A vision projector: its metadata, and the models it loads with, but no memory estimate
    of a language model (it has no context or KV cache of its own)."""
    from app.cli.terminal_text import terminal_safe
    from app.engine.gguf.info import format_model_info
    from app.engine.vision.not_a_model import paired_models, projector_refusal

    if args.json:
        data = info.to_dict()
        data["architecture_supported"] = False  # not as a model: only with one
        data["vision_projector"] = True
        data["paired_models"] = [str(path) for path in paired_models(args.file)]
        print(json.dumps(data, indent=2))
        return 0
    print(terminal_safe(format_model_info(info)))
    print(terminal_safe(projector_refusal(args.file, info.architecture) or ""))
    return 0
