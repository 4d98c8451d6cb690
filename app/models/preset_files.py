"""Presets as JSON files, for sharing: export the user's presets, import a file of them.

A file holds one preset or a list of them, each shaped like the built-in ones under
``resources/presets``: ``{"name": ..., "system_prompt": ..., "sampling": {...}}`` (sampling
optional). A file is untrusted: it is read bounded, and every preset is checked before any is
saved, so a bad file imports nothing and says what is wrong and where.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.engine.types import Sampling

MAX_FILE_BYTES = 1_000_000
MAX_PRESETS = 100
MAX_NAME_CHARS = 80
MAX_PROMPT_CHARS = 20_000
MAX_STOPS = 16
MAX_STOP_CHARS = 100
# The chat settings' own ranges: an imported preset shows exactly as written, never clamped.
SAMPLING_LIMITS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 0, 1000),
    "min_p": (float, 0.0, 1.0),
    "repeat_penalty": (float, 0.5, 2.0),
    "max_tokens": (int, 0, 131072),  # 0: until the model stops
    "seed": (int, -1, 2**31 - 1),
}


class PresetFileError(ValueError):
    """The file cannot be imported; the message is meant for the user."""


@dataclass(frozen=True)
class PresetData:
    """A preset as a file holds it."""

    name: str
    system_prompt: str
    sampling: Sampling | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "system_prompt": self.system_prompt}
        if self.sampling is not None:
            data["sampling"] = self.sampling.to_dict()
        return data


def check_name(value: object) -> str:
    """A usable preset name (surrounding spaces dropped), or PresetFileError saying why not."""
    if not isinstance(value, str):
        raise PresetFileError("the name must be text")
    name = value.strip()
    if not name:
        raise PresetFileError("the name is empty")
    if len(name) > MAX_NAME_CHARS:
        raise PresetFileError(f"the name is longer than {MAX_NAME_CHARS} characters")
    if any(not ch.isprintable() for ch in name):
        raise PresetFileError("the name holds line breaks or control characters")
    return name


def check_sampling(value: object) -> Sampling:
    """Sampling from untrusted JSON: known fields only, each of its type and within the chat
    settings' range; missing fields take their defaults."""
    if not isinstance(value, dict):
        raise PresetFileError("'sampling' must be an object")
    known = {f.name for f in fields(Sampling)}
    unknown = sorted(str(k)[:40] for k in value if k not in known)
    if unknown:
        raise PresetFileError(f"unknown sampling setting {unknown[0]!r}")
    values: dict[str, Any] = {}
    for key, raw in value.items():
        if key == "stop":
            values[key] = _stops(raw)
            continue
        kind, low, high = SAMPLING_LIMITS.get(key, (type(getattr(Sampling(), key)), -math.inf,
                                                    math.inf))
        number_ok = isinstance(raw, int | float) and not isinstance(raw, bool)
        if kind is int and not (isinstance(raw, int) and not isinstance(raw, bool)):
            raise PresetFileError(f"{key} must be a whole number")
        if kind is float and not (number_ok and math.isfinite(raw)):
            raise PresetFileError(f"{key} must be a number")
        if kind not in (int, float) and not isinstance(raw, kind):
            raise PresetFileError(f"{key} has the wrong type")
        if kind in (int, float) and not low <= raw <= high:
            raise PresetFileError(f"{key} must lie between {low:g} and {high:g}")
        values[key] = float(raw) if kind is float else raw
    return Sampling(**values)


def _stops(raw: object) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise PresetFileError("stop must be a list of non-empty strings")
    if len(raw) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in raw):
        raise PresetFileError(
            f"stop holds at most {MAX_STOPS} strings of {MAX_STOP_CHARS} characters")
    return list(raw)


def _preset(item: object) -> PresetData:
    if not isinstance(item, dict):
        raise PresetFileError("a preset must be an object with a name and a system_prompt")
    name = check_name(item.get("name"))
    prompt = item.get("system_prompt", "")
    if not isinstance(prompt, str):
        raise PresetFileError("system_prompt must be text")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise PresetFileError(f"system_prompt is longer than {MAX_PROMPT_CHARS:,} characters")
    raw = item.get("sampling")
    return PresetData(name, prompt, None if raw is None else check_sampling(raw))


def _no_constants(token: str) -> None:
    raise PresetFileError(f"{token} is not a number JSON allows")


def parse_presets(text: str) -> list[PresetData]:
    """Every preset of a file's text, checked; PresetFileError for the first problem."""
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except PresetFileError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PresetFileError(f"The file is not valid JSON ({str(exc)[:120]}).") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise PresetFileError("The file holds no presets.")
    if len(items) > MAX_PRESETS:
        raise PresetFileError(f"The file holds {len(items)} presets; at most {MAX_PRESETS} "
                              "can be imported at once.")
    presets: list[PresetData] = []
    seen: set[str] = set()
    for number, item in enumerate(items, 1):
        where = f"Preset {number}" if len(items) > 1 else "The preset"
        try:
            preset = _preset(item)
        except PresetFileError as exc:
            raise PresetFileError(f"{where}: {exc}.") from None
        if preset.name in seen:
            raise PresetFileError(f"{where}: the name {preset.name!r} appears twice.")
        seen.add(preset.name)
        presets.append(preset)
    return presets


def read_presets_file(path: Path) -> list[PresetData]:
    """The checked presets of a file; PresetFileError (nothing read past the bound) if not."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PresetFileError(f"The file cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise PresetFileError(
            f"The file is larger than {MAX_FILE_BYTES // 1000:,} kB; a presets file is small.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PresetFileError("The file is not UTF-8 text.") from None
    return parse_presets(text)


def write_presets_file(path: Path, presets: Iterable[PresetData]) -> None:
    """Write presets as a JSON list, through a temporary file so no half-written file is left
    under ``path``."""
    text = json.dumps([p.to_dict() for p in presets], ensure_ascii=False, indent=2) + "\n"
    fd, temp = tempfile.mkstemp(prefix=".presets-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
