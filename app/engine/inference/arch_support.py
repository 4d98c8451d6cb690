"""Whether this llama.cpp build knows a model architecture, asked without loading any weights.

llama.cpp has no call that lists its architectures, but loading a model starts by looking its
architecture up and fails with "unknown model architecture: 'X'" before reading anything else.
So each architecture name is probed once with a vocabulary-only load of a header-only GGUF that
names it: an unknown one fails with that line, a known one gets further (and fails on the
missing hyperparameters). The answer is cached per name; a probe takes about a millisecond.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
import threading

import llama_cpp

from app.engine.inference import llama_log

_UNKNOWN = re.compile(r"unknown model architecture: '(.*)'")
_cache: dict[str, bool] = {}
_lock = threading.Lock()


def shown_name(architecture: str) -> str:
    """The name as it may be shown: it comes from the file, so no control characters (a
    terminal would act on escape sequences) and no screenful of text."""
    name = "".join(c if c.isprintable() else "?" for c in architecture)
    return name if len(name) <= 64 else name[:63] + "…"


def unsupported_message(architecture: str) -> str:
    return (f"architecture '{shown_name(architecture)}' is not supported by this llama.cpp "
            f"build (llama-cpp-python {llama_cpp.__version__})")


def unknown_architecture(error_lines: list[str]) -> str | None:
    """The architecture named by llama.cpp's "unknown model architecture" line, if any."""
    for line in error_lines:
        match = _UNKNOWN.search(line)
        if match:
            return match.group(1)
    return None


def architecture_supported(architecture: str) -> bool:
    """False only when llama.cpp says it does not know ``architecture``; safe from any thread."""
    if not architecture:
        return True  # a file without one fails to load with llama.cpp's own reason
    with _lock:
        known = _cache.get(architecture)
        if known is None:
            known = _cache[architecture] = _probe(architecture)
    return known


def _header_only_gguf(architecture: str) -> bytes:
    def string(value: str) -> bytes:
        data = value.encode("utf-8", errors="replace")
        return struct.pack("<Q", len(data)) + data

    # GGUF v3: magic, version, tensor count, key/value count, then `general.architecture`.
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    out += string("general.architecture") + struct.pack("<I", 8) + string(architecture)
    return out + b"\0" * (-len(out) % 32)  # the (empty) data section starts aligned


def _probe(architecture: str) -> bool:
    llama_log.install()
    fd, path = tempfile.mkstemp(prefix="hearth-arch-", suffix=".gguf")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_header_only_gguf(architecture))
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        with llama_log.captured_errors() as errors:
            model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if model:
            llama_cpp.llama_model_free(model)
            return True
        return unknown_architecture(errors) is None
    finally:
        os.unlink(path)


def architecture_label(architecture: str) -> str:
    """The name for lists of models, marked when this build cannot load it."""
    if architecture_supported(architecture):
        return architecture
    return f"{shown_name(architecture)} (not supported)"
