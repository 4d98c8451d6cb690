"""The public-domain sample texts shipped in `resources/samples/` (see SOURCES.md there), on
which the quality report measures perplexity."""

from __future__ import annotations

import importlib.resources

DEFAULT_SAMPLE = "alice.txt"


def sample_text(name: str = DEFAULT_SAMPLE) -> str:
    return (importlib.resources.files("app.resources") / "samples" / name).read_text("utf-8")
