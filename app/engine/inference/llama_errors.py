"""Turn what llama.cpp logged about a failure into one sentence for the user."""

from __future__ import annotations

import re
from pathlib import Path

from app.engine.inference import llama_log
from app.engine.inference.arch_support import unknown_architecture, unsupported_message


def explain_failure(action: str, path: str) -> str:
    """A sentence for the user: what failed, and the most telling error line llama.cpp logged
    (its last line is often the generic "failed to load model")."""
    details = llama_log.take_recent_errors()
    name = Path(path).name
    architecture = unknown_architecture(details)
    if architecture is not None:
        return f"Cannot load {name}: {unsupported_message(architecture)}."
    telling = [line for line in details if not _GENERIC_ERROR.search(line)]
    last = (telling or details or [""])[-1]
    reason = _FUNCTION_PREFIX.sub("", last).strip()
    return f"llama.cpp could not {action} {name}" + (f": {reason}" if reason else "")


# "llama_model_load_from_file_impl: failed to load model" says nothing the user does not know.
_GENERIC_ERROR = re.compile(r"failed to load model\s*$")
_FUNCTION_PREFIX = re.compile(r"^\w+: ")
