"""One watcher of the serving pool for the whole window.

The pool is shared by the chat and the local server, and models come and go from either side
(an API request loads one just in time; a TTL unloads it), so the window polls it. One timer
reads `pool.models()` (a lock and a list: cheap) and signals only when something a person sees
changed, so the loaded-models strip and the Developer page's busy slots never re-set labels for
nothing.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from app.engine.serving.pool import ModelPool, ServedModel

REFRESH_MS = 500


def _shown(model: ServedModel) -> tuple:
    """What the window shows of a model (not its idle time, which changes every read)."""
    return (model.key, model.path, model.kind, model.n_ctx, model.parallel, model.memory_bytes,
            model.busy_slots, model.jit)


class PoolWatcher(QObject):
    changed = Signal(list)  # list[ServedModel], whenever what is shown of them changed

    def __init__(self, pool: ModelPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.models: list[ServedModel] = pool.models()
        self._seen = [_shown(m) for m in self.models]
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    def poll(self) -> None:
        """Read the pool now (after an unload, say) rather than at the next tick."""
        models = self.pool.models()
        seen = [_shown(m) for m in models]
        self.models = models
        if seen != self._seen:
            self._seen = seen
            self.changed.emit(models)

    def stop(self) -> None:
        self._timer.stop()
