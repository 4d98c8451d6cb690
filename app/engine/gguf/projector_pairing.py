"""Which vision projector (mmproj) goes with which model file: same folder, then the names.

Hub repos ship a vision model's projector beside its quants, named in a few ways:

- one projector for the whole repo with a generic name: ``gemma-3-4b-it-Q4_K_M.gguf`` with
  ``mmproj-model-f16.gguf`` (or unsloth's ``mmproj-F16.gguf``, ``mmproj-BF16.gguf``…);
- a projector named after the model: ``Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf`` with
  ``mmproj-Qwen2.5-VL-3B-Instruct-f16.gguf`` (bartowski, ggml-org), shared by every quant;
- a folder a user filled with several models and their projectors, where only the names tell
  which goes with which.

So a model takes the projector whose name, with "mmproj" and the quant or precision taken off,
is the model's own name (or contained in it, or containing it), the most specific one winning;
failing that, a generically named one; failing that, the projector of a folder whose projectors
are all one projector in several precisions (a repo's). Among precisions of one projector F16 is
preferred (what converters write by default and what LM Studio downloads).

Names only propose: a file counts as a projector when its GGUF header says so
(``general.architecture == "clip"``), and a model is one whose header names another architecture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.gguf.names import split_part

__all__ = ["FolderPairing", "find_projector", "is_projector", "pair_folder", "pair_names",
           "projector_stem"]

PROJECTOR_ARCHITECTURE = "clip"  # what llama.cpp's converters write in a projector's header

# A quant or precision label at the end of a name: Q4_K_M, IQ3_XXS, Q8_0, UD-Q4_K_XL, F16,
# BF16, FP16, F32, MXFP4_MOE…
_QUANT_TAIL = re.compile(
    r"[-_.](?:ud[-_])?(?:i?q\d(?:_[a-z0-9]+)*|bf16|fp16|fp32|f16|f32|mxfp4(?:_moe)?)$")
_MMPROJ = re.compile(r"(?:^|[-_.])mmproj(?:$|[-_.])")
_SEPARATORS = re.compile(r"[-_.\s]+")
# What a projector's name may say besides its model: nothing that tells models apart.
_GENERIC = {"", "model", "vision", "projector", "proj", "clip", "mm"}
# Precision preference among copies of one projector; anything else comes after, by name.
_PRECISION_ORDER = ("f16", "bf16", "fp16", "f32", "fp32", "q8_0")


def _base(name: str) -> str:
    name = name.rsplit("/", 1)[-1].lower()
    if name.endswith(".gguf"):
        name = name[: -len(".gguf")]
    split = re.search(r"-\d{5}-of-\d{5}$", name)
    if split:
        name = name[: split.start()]
    return name


def _strip_quant(name: str) -> str:
    while True:
        shorter = _QUANT_TAIL.sub("", name)
        if shorter == name:
            return name
        name = shorter


def _compact(name: str) -> str:
    return _SEPARATORS.sub("", name)


def model_stem(name: str) -> str:
    """A model file's name without quant, split suffix and separators, lower case:
    ``Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf`` → ``qwen25vl3binstruct`` (dots go too)."""
    return _compact(_strip_quant(_base(name)))


def projector_stem(name: str) -> str:
    """The model a projector's name refers to, as `model_stem` writes it; "" for a generic
    name (``mmproj-model-f16.gguf``, ``mmproj-F16.gguf``)."""
    base = _strip_quant(_base(name))
    base = _MMPROJ.sub("-", base).strip("-_. ")
    base = _strip_quant(base)  # "x-f16-mmproj" puts the precision before the marker
    words = [w for w in _SEPARATORS.split(base) if w]
    if all(w in _GENERIC for w in words):
        return ""
    return "".join(words)


def _precision_rank(name: str) -> tuple[int, str]:
    base = _base(name)
    for rank, label in enumerate(_PRECISION_ORDER):
        if re.search(rf"(?:^|[-_.]){label}$", base):
            return rank, base
    return len(_PRECISION_ORDER), base


def _name_score(model: str, projector: str) -> int:
    """How specifically the projector's stem names the model (0: it names another)."""
    if not projector or not model:
        return 0
    if projector in model or model in projector:
        return min(len(projector), len(model))
    return 0


def pair_names(models: Iterable[str], projectors: Iterable[str]) -> dict[str, str | None]:
    """For each model file name, the name of its projector among ``projectors`` (all in one
    folder), or None. Pure name rules; `pair_folder` checks the headers first."""
    ordered = sorted(set(projectors), key=_precision_rank)
    stems = {p: projector_stem(p) for p in ordered}
    named = [p for p in ordered if stems[p]]
    generic = [p for p in ordered if not stems[p]]
    scores = {m: [(_name_score(model_stem(m), stems[p]), p) for p in named] for m in models}
    # A folder whose projectors are one projector in several precisions is a repo's folder,
    # and that projector its models' even if its name is spelled differently; not when the
    # name is that of a model in the folder (a user's folder of several models).
    one_projector = len({stems[p] for p in ordered}) == 1
    named_elsewhere = any(score for scored in scores.values() for score, _ in scored)
    result: dict[str, str | None] = {}
    for model, scored in scores.items():
        best = max((score for score, _ in scored), default=0)
        if best > 0:
            # Sorted by precision first, so the first at the best score is the preferred copy.
            result[model] = next(p for score, p in scored if score == best)
        elif generic:
            result[model] = generic[0]
        elif one_projector and ordered and not named_elsewhere:
            result[model] = ordered[0]
        else:
            result[model] = None
    return result


def is_projector(path: Path) -> bool:
    """Whether the GGUF header of ``path`` says it is a projector (False when unreadable)."""
    try:
        return read_model_info(path).architecture == PROJECTOR_ARCHITECTURE
    except GGUFError:
        return False


@dataclass(frozen=True)
class FolderPairing:
    """The GGUF files of one folder sorted by what their headers say."""

    models: dict[Path, Path | None]  # each model (first part of a split one) → its projector
    projectors: tuple[Path, ...]  # every projector in the folder, paired or not
    unreadable: tuple[Path, ...]  # .gguf files whose header could not be read


def pair_folder(folder: Path) -> FolderPairing:
    """Read the header of every ``.gguf`` directly in ``folder`` and pair models with
    projectors. Later parts of a split model are left out (the model is its first part)."""
    models: list[Path] = []
    projectors: list[Path] = []
    unreadable: list[Path] = []
    try:
        files = sorted(p for p in Path(folder).iterdir()
                       if p.name.lower().endswith(".gguf") and p.is_file())
    except OSError:
        files = []
    for path in files:
        split = split_part(path.name)
        if split and split[0] > 1:
            continue
        try:
            architecture = read_model_info(path).architecture
        except GGUFError:
            unreadable.append(path)
            continue
        (projectors if architecture == PROJECTOR_ARCHITECTURE else models).append(path)
    by_name = {p.name: p for p in projectors}
    names = pair_names([m.name for m in models], by_name)
    paired = {m: (by_name[names[m.name]] if names[m.name] else None) for m in models}
    return FolderPairing(paired, tuple(projectors), tuple(unreadable))


def find_projector(model: str | Path) -> Path | None:
    """The projector for the model file at ``model``, from the files beside it, or None."""
    model = Path(model)
    return pair_folder(model.parent).models.get(model)
