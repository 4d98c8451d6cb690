"""Everything the window needs that outlives any one page: data folders, log, Store, engine.

Opening is quick (no model is read or assembled here), so it may run on the GUI thread before
the window shows; the starter model, if needed, is assembled later by a background job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app.engine.logfile import LogFile
from app.engine.paths import DataPaths, data_paths
from app.engine.serving.pool import ModelPool
from app.engine.sizing.hardware import offload_gpus
from app.models.presets import seed_builtin_presets
from app.models.store import Store
from app.services.serving import ModelCatalog
from app.ui.bridge import EngineBridge

log = logging.getLogger(__name__)


class AppContext:
    def __init__(self, paths: DataPaths | None = None) -> None:
        self.paths = (paths or data_paths()).ensure()
        self.log_file = LogFile(self.paths.logs)
        log.info("Hearth starting with data in %s", self.paths.root)
        self.store = Store.open(self.paths.database)
        try:
            interrupted = self.store.mark_interrupted()
            if interrupted:
                log.warning("%d replies were cut off by a crash; kept as partial", interrupted)
            seed_builtin_presets(self.store)
        except Exception:
            self.store.close()
            self.log_file.close()
            raise
        # One pool of loaded models, shared by the window's chat and the API server.
        self.pool = ModelPool()
        # One catalog of API model ids, for the server and for naming the chat's model.
        self.catalog = ModelCatalog(self.store, self.paths.models)
        self.bridge = EngineBridge(pool=self.pool, model_key=_api_ids(self.catalog))
        # Probe the GPUs now, off the GUI thread, so the first fit estimate finds them cached.
        threading.Thread(target=offload_gpus, name="gpu-probe", daemon=True).start()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the engine first (its last events may still write replies), then the Store."""
        if self._closed:
            return
        self._closed = True
        self.bridge.shutdown()
        self.bridge.deleteLater()
        self.pool.shutdown()
        self.store.close()
        log.info("Hearth closed")
        self.log_file.close()


def _api_ids(catalog: ModelCatalog) -> Callable[[str], str]:
    """A loaded file's name in the pool: its API model id; its path if it has none (a file the
    load will refuse, say: the engine reports that, not this lookup). Called on the engine
    host's thread: it reads the Store and maybe a GGUF header."""

    def key(path: str) -> str:
        try:
            return catalog.add_path(path).id
        except Exception:
            return path

    return key
