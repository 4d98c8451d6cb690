"""A vision projector (mmproj) offered where a language model is expected.

A projector's GGUF header says ``general.architecture = "clip"``; llama.cpp refuses it as a main
model ("CLIP cannot be used as main model"). Every way of loading or serving a model asks here
first, so the user hears what the file is and which model to load instead.
"""

from __future__ import annotations

from pathlib import Path

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.gguf.projector_pairing import PROJECTOR_ARCHITECTURE, pair_folder
from app.engine.inference.runtime import LoadError

__all__ = ["ProjectorNotAModel", "is_projector_architecture", "paired_models",
           "projector_refusal", "refuse_projector"]

_NAMED = 3  # models named in the message; a repo folder may hold a dozen quants


class ProjectorNotAModel(LoadError):
    """A projector file was given to load as a model; the message is for the user."""


def is_projector_architecture(architecture: str) -> bool:
    return architecture == PROJECTOR_ARCHITECTURE


def paired_models(projector: str | Path) -> list[Path]:
    """The models beside ``projector`` that load with it (by the pairing rules)."""
    projector = Path(projector).absolute()
    pairing = pair_folder(projector.parent)
    return sorted(model for model, paired in pairing.models.items() if paired == projector)


def projector_refusal(path: str | Path, architecture: str | None = None) -> str | None:
    """Why ``path`` cannot be loaded as a model when it is a projector, else None (also for a
    file whose header cannot be read: the loader reports that). ``architecture``: the header's,
    when the caller read it already."""
    if architecture is None:
        try:
            architecture = read_model_info(path).architecture
        except GGUFError:
            return None
    if not is_projector_architecture(architecture):
        return None
    name = Path(path).name
    models = [m.name for m in paired_models(path)]
    if models:
        listed = ", ".join(models[:_NAMED]) + (" or another quant" if len(models) > _NAMED else "")
        what = f"Load its model instead ({listed}, beside it)"
    else:
        what = ("Load the vision model it belongs to instead, with this file in the same "
                "folder")
    return (f"{name} is a vision projector (mmproj), not a language model: it loads with its "
            f"model, never on its own. {what}; Hearth adds the projector.")


def refuse_projector(path: str | Path, architecture: str | None = None) -> None:
    """`ProjectorNotAModel` when ``path`` is a projector (see `projector_refusal`)."""
    reason = projector_refusal(path, architecture)
    if reason is not None:
        raise ProjectorNotAModel(reason)
