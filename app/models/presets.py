"""Built-in prompt presets, shipped as JSON under ``resources/presets`` (package ``app.resources``).

Seeding runs at every start and rewrites the built-in rows, so an upgrade that improves a
prompt reaches existing users; a user preset that happens to share a name is left alone.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from app.engine.types import Sampling
from app.models.records import PresetRecord
from app.models.store import Store

log = logging.getLogger(__name__)


def presets_folder() -> Traversable:
    try:
        return files("app.resources") / "presets"
    except ModuleNotFoundError:
        # A source checkout that is not installed has no `app.resources` package: the
        # package-dir mapping in pyproject only exists once setuptools has installed it.
        return Path(__file__).resolve().parents[2] / "resources" / "presets"


def builtin_presets() -> list[tuple[str, str, Sampling | None]]:
    """(name, system prompt, sampling or None) for every shipped preset, sorted by file name."""
    presets = []
    entries = sorted(presets_folder().iterdir(), key=lambda entry: entry.name)
    for entry in entries:
        if not entry.name.endswith(".json"):
            continue
        data = json.loads(entry.read_text(encoding="utf-8"))
        sampling = Sampling.from_dict(data["sampling"]) if data.get("sampling") else None
        presets.append((data["name"], data["system_prompt"], sampling))
    return presets


def seed_builtin_presets(store: Store) -> list[PresetRecord]:
    """Insert or refresh the shipped presets; returns the rows written."""
    user_names = {p.name for p in store.list_presets() if not p.builtin}
    written = []
    for name, system_prompt, sampling in builtin_presets():
        if name in user_names:
            log.info("keeping the user's preset %r over the built-in one", name)
            continue
        written.append(store.upsert_preset(name, system_prompt, sampling, builtin=True))
    return written
