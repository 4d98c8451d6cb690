"""What a GGUF file's name says: part k of a split model, or a vision projector (mmproj).

One set of rules for the Hub listing, the library's folder scan and download registration, so
they never disagree about which files are models.
"""

from __future__ import annotations

import re
from pathlib import Path

# "model-00002-of-00003.gguf" (llama.cpp's gguf-split naming): llama.cpp loads a split model
# from its first part and finds the others beside it.
_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def split_part(name: str) -> tuple[int, int] | None:
    """``(part, count)`` for a part of a split GGUF (``x-00002-of-00003.gguf`` → ``(2, 3)``),
    or None for a file that is not one (numbers out of range count as not split)."""
    match = _SPLIT.match(name.rsplit("/", 1)[-1])
    if not match:
        return None
    part, count = int(match["part"]), int(match["count"])
    return (part, count) if 1 <= part <= count else None


def part_name(name: str, part: int) -> str:
    """The name of part ``part`` of the split model that ``name`` belongs to (``name`` itself
    when it is not a split part). Any folder in ``name`` is kept."""
    folder, _, base = name.rpartition("/")
    match = _SPLIT.match(base)
    if match is None or split_part(base) is None:
        return name
    renamed = f"{match['stem']}-{part:05d}-of-{match['count']}{base[-len('.gguf'):]}"
    return f"{folder}/{renamed}" if folder else renamed


def split_siblings(path: Path) -> list[Path]:
    """Every file of the model ``path`` belongs to, part 1 first, whether or not it exists yet;
    ``[path]`` for a file that is not split."""
    split = split_part(path.name)
    if split is None:
        return [path]
    return [path.with_name(part_name(path.name, k)) for k in range(1, split[1] + 1)]


def is_mmproj(name: str) -> bool:
    """Whether a GGUF file is a vision projector (``mmproj-x.gguf``, ``x-mmproj-f16.gguf``,
    ``x_mmproj_f16.gguf``…), which is not a language model on its own."""
    return "mmproj" in name.rsplit("/", 1)[-1].lower()
