"""Where Hearth keeps its data: per-user directories, or one folder under `HEARTH_HOME`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class DataPaths:
    root: Path
    database: Path
    models: Path
    logs: Path
    exports: Path
    images: Path  # images attached to chats, named by content hash (see app.models.store)

    def ensure(self) -> DataPaths:
        for folder in (self.root, self.models, self.logs, self.exports, self.images):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def data_paths() -> DataPaths:
    """The data folders, honouring `HEARTH_HOME` (tests and portable installs set it)."""
    home = os.environ.get("HEARTH_HOME")
    if home:
        root = Path(home)
        return DataPaths(root, root / "hearth.db", root / "models", root / "logs", root / "exports",
                         root / "images")
    root = Path(platformdirs.user_data_dir("hearth", appauthor=False))
    logs = Path(platformdirs.user_log_dir("hearth", appauthor=False))
    return DataPaths(root, root / "hearth.db", root / "models", logs, root / "exports",
                     root / "images")
