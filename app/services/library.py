"""The model library: index GGUF files where they lie, find other apps' models, forget or delete.

Files are never copied: a row in the Store points at the file in place, so a model shared with
LM Studio or the Hugging Face cache costs no extra disk. Everything a user can get wrong (a text
file named .gguf, a truncated download, an unreadable folder) becomes a line in the report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.engine.gguf.info import GGUFError, read_model_info
from app.engine.gguf.names import is_mmproj, split_part, split_siblings
from app.engine.gguf.projector_pairing import PROJECTOR_ARCHITECTURE, find_projector
from app.engine.paths import data_paths
from app.engine.starter import install_starter
from app.models.records import ModelFileRecord, ModelSource
from app.models.store import Store

log = logging.getLogger(__name__)

@dataclass
class ImportReport:
    added: list[ModelFileRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "path: why", nothing wrong with them
    errors: list[str] = field(default_factory=list)  # one readable sentence per bad file


@dataclass(frozen=True)
class ImportProgress:
    done: int
    total: int
    path: Path


def skip_reason(path: Path) -> str | None:
    """Why a ``.gguf`` file is not a model to index, or None if it is.

    llama.cpp loads a split model from its first part, so only that part is indexed.
    """
    if path.name.lower().endswith(".part"):
        return "an unfinished download"
    if is_mmproj(path.name):
        return "a vision projector (mmproj), not a language model"
    split = split_part(path.name)
    if split and split[0] > 1:
        return "a later part of a split model (the first part is indexed)"
    return None


def _walk_gguf(folder: Path, errors: list[str] | None = None) -> list[Path]:
    """Every ``*.gguf`` under ``folder``, sorted; symlinked files count (the HF cache uses them)."""
    found: list[Path] = []

    def on_error(exc: OSError) -> None:
        if errors is not None:
            errors.append(f"Cannot read folder {exc.filename}: {exc.strerror or exc}")

    for root, _dirs, files in os.walk(folder, onerror=on_error):
        found.extend(Path(root) / f for f in files if f.lower().endswith(".gguf"))
    return sorted(found)


def _candidates(path: Path, report: ImportReport) -> list[Path]:
    if path.is_dir():
        files = []
        for file in _walk_gguf(path, report.errors):
            reason = skip_reason(file)
            if reason:
                report.skipped.append(f"{file}: {reason}")
            else:
                files.append(file)
        if not files and not report.errors:
            report.errors.append(f"No GGUF model files were found in {path}")
        return files
    if path.exists():
        # A file the user picked explicitly is tried whatever its name; read_model_info says
        # clearly if it is not a model.
        if path.name.lower().endswith(".part"):
            report.errors.append(f"{path} is an unfinished download, not a model file")
            return []
        return [path]
    report.errors.append(f"No such file or folder: {path}")
    return []


def iter_import(
    store: Store, paths: Iterable[str | Path], source: ModelSource = "import"
) -> Generator[ImportProgress, None, ImportReport]:
    """Index files and folders, yielding progress per file; returns the report.

    A generator so the GUI can run it off its thread and show progress (or stop between files).
    """
    report = ImportReport()
    files: list[Path] = []
    for raw in paths:
        files.extend(_candidates(Path(raw).expanduser().absolute(), report))
    known = {record.path for record in store.list_model_files()}
    for done, file in enumerate(files, start=1):
        yield ImportProgress(done, len(files), file)
        if str(file) in known:
            report.skipped.append(f"{file}: already in the library")
            continue
        try:
            info = read_model_info(file)
        except GGUFError as exc:
            report.errors.append(str(exc))
            continue
        except Exception as exc:  # one odd file must not stop a folder scan
            log.exception("reading %s failed", file)
            report.errors.append(f"{file} could not be read ({exc})")
            continue
        if info.architecture == PROJECTOR_ARCHITECTURE:  # a projector not named "mmproj"
            report.skipped.append(f"{file}: a vision projector (mmproj), not a language model")
            continue
        report.added.append(store.add_model_file(info, source))
        known.add(str(file))
    return report


def import_path(store: Store, path: str | Path, source: ModelSource = "import") -> ImportReport:
    """Index one GGUF file, or every GGUF file under a folder; never raises for user files."""
    steps = iter_import(store, [path], source)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def projector_for(model_path: str | Path) -> Path | None:
    """The vision projector (mmproj) that goes with the model file at ``model_path``: one in
    the same folder, chosen by the name rules of `app.engine.gguf.projector_pairing` from the
    files whose GGUF header says they are projectors; None for a text-only model."""
    return find_projector(Path(model_path))


def known_model_folders() -> list[Path]:
    """Existing model folders of LM Studio (new and old layouts) and the Hugging Face cache."""
    home = Path.home()
    candidates = [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]
    if os.environ.get("HF_HUB_CACHE"):
        candidates.append(Path(os.environ["HF_HUB_CACHE"]))
    elif os.environ.get("HF_HOME"):
        candidates.append(Path(os.environ["HF_HOME"]) / "hub")
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
        candidates.append(cache / "huggingface" / "hub")
    found: list[Path] = []
    for folder in candidates:
        folder = folder.expanduser()
        if folder.is_dir() and folder not in found:
            found.append(folder)
    return found


def find_unindexed(store: Store, folders: Iterable[Path]) -> list[Path]:
    """Model files under ``folders`` that are not in the library yet (headers are not read)."""
    known = {record.path for record in store.list_model_files()}
    found: list[Path] = []
    for folder in folders:
        for file in _walk_gguf(Path(folder).expanduser().absolute()):
            if skip_reason(file) is None and str(file) not in known and file not in found:
                found.append(file)
    return found


def in_models_folder(path: str | Path, models_dir: Path | None = None) -> bool:
    """Whether ``path`` lives under Hearth's own models folder (so Hearth may delete it)."""
    root = (models_dir or data_paths().models).resolve()
    return Path(path).resolve().is_relative_to(root)


def remove_model(
    store: Store, record: ModelFileRecord, delete_file: bool, models_dir: Path | None = None
) -> bool:
    """Forget a model; also delete its file when asked and it is Hearth's own. True if deleted.

    Every part of a split model is deleted, the first part last. The files go first, so a file
    that cannot be deleted (permissions, in use on Windows) keeps its row and the OSError
    reaches the user, who can try again.
    """
    root = models_dir or data_paths().models
    deleted = False
    if delete_file and in_models_folder(record.path, root):
        path = Path(record.path)
        for part in reversed(split_siblings(path)):
            part.unlink(missing_ok=True)
        deleted = True
        _prune_empty_parents(path.parent, root)
    store.remove_model_file(record.id)
    return deleted


def _prune_empty_parents(folder: Path, root: Path) -> None:
    """Remove the emptied publisher/repo folders, never the models folder itself."""
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:  # not empty
            return
        folder = folder.parent


def ensure_starter(store: Store, models_dir: Path | None = None) -> ModelFileRecord:
    """Assemble the starter model into the models folder if needed and register it."""
    path = install_starter((models_dir or data_paths().models).absolute())
    record = store.get_model_file_by_path(path)
    if record is not None:
        return record
    return store.add_model_file(read_model_info(path), "starter")


def starter_record(store: Store) -> ModelFileRecord | None:
    """The registered starter model whose file still exists, if any."""
    for record in store.list_model_files():
        if record.source == "starter" and Path(record.path).is_file():
            return record
    return None
