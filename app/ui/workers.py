"""Run plain Qt-free functions and generators off the GUI thread, with results as Qt signals.

Built on superqt's workers (`create_worker`): a generator's yields arrive through `yielded`, its
return value through `returned`, an exception through `errored`, all on the GUI thread. The
workers run on a private thread pool owned by a `TaskRunner`, so a window can stop and wait for
exactly its own jobs when it closes, and tests can check that no job outlives its window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool
from superqt.utils import WorkerBase, create_worker

log = logging.getLogger(__name__)

Slot = Callable[..., Any]


class TaskRunner(QObject):
    """Starts background jobs and remembers them until they finish."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._running: set[WorkerBase] = set()

    def start(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_yielded: Slot | None = None,
        on_returned: Slot | None = None,
        on_errored: Slot | None = None,
        on_finished: Slot | None = None,
    ) -> WorkerBase:
        """Run ``fn(*args)`` on the pool; a generator function gets a `GeneratorWorker`.

        Errors are always logged with their traceback; without ``on_errored`` they go no further
        (superqt's default would re-raise them on the GUI thread, which crashes a slot).
        """
        worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True)
        worker.errored.connect(lambda exc: log.error("background job failed", exc_info=exc))
        for signal, slot in (
            ("yielded", on_yielded),
            ("returned", on_returned),
            ("errored", on_errored),
            ("finished", on_finished),
        ):
            if slot is not None:
                getattr(worker, signal).connect(slot)
        worker.finished.connect(lambda: self._running.discard(worker))
        self._running.add(worker)
        self._pool.start(worker)
        return worker

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def shutdown(self, timeout_ms: int = 15_000) -> bool:
        """Ask every job to stop (generators stop at their next yield) and wait for them."""
        for worker in list(self._running):
            worker.quit()
        return self._pool.waitForDone(timeout_ms)
