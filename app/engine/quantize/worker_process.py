"""Run llama.cpp work (quantize, size predictions, quality measurements) in a child process.

A child process is the only way to make Cancel truly stop `llama_model_quantize` (it has no
abort hook), and a crash inside llama.cpp then costs the job, not the window. The child runs
`app.engine.quantize.quantize_worker`: it reads one JSON request on stdin and answers with one JSON
object per line on stdout.

The child starts isolated (``python -I``: no current folder, PYTHONPATH or user site on its
path) in Hearth's own package folder, so a folder the user works in that holds its own `app/`
package (or a hostile ``PYTHONPATH``) cannot take over a job. It imports Hearth from the folder
the parent's own ``app`` package came from, installed, editable or run from a checkout.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WORKER_MODULE = "app.engine.quantize.quantize_worker"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # Hearth's `app` package
# Run as -c: with -I, `-m` would find `app` only through site-packages (an editable install's
# finder), not in a checkout run through PYTHONPATH. This puts the folder holding the parent's
# own `app` first, unless it is already searched (an installed Hearth: site-packages, which must
# not go before the standard library).
_BOOTSTRAP = """
import os, runpy, sys
root, module = sys.argv.pop(1), sys.argv.pop(1)
if root not in map(os.path.realpath, sys.path):
    sys.path.insert(0, root)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""
# Fields of a request that name files: made absolute, since the child runs in another folder.
_PATH_FIELDS = ("source", "dest", "model", "imatrix")


def worker_command(module: str = WORKER_MODULE) -> list[str]:
    """The isolated command line that runs ``module`` as a Hearth child process."""
    # -u: -I ignores PYTHONUNBUFFERED, and progress lines must not wait in a buffer.
    return [sys.executable, "-I", "-u", "-c", _BOOTSTRAP, str(_PACKAGE_DIR.parent), module]


class WorkerError(RuntimeError):
    """The child reported an error or died; the message is meant for the user."""


class WorkerCancelled(WorkerError):
    """The child was stopped on request."""


class WorkerProcess:
    """One child process running one request. ``cancel`` may be called from any thread.

    A job running several workers in turn passes them one shared ``cancelled`` event, so a
    cancel that arrives between two workers still stops the next one before it starts.
    """

    def __init__(self, request: dict[str, Any],
                 cancelled: threading.Event | None = None) -> None:
        self._request = request
        self._proc: subprocess.Popen[str] | None = None
        self._cancelled = cancelled if cancelled is not None else threading.Event()
        # Starting the child and cancelling it exclude each other: a cancel that lands while
        # the child is being started either stops the start or finds the child to kill.
        self._lock = threading.Lock()
        self._stderr_tail: list[str] = []

    def messages(self) -> Iterator[dict[str, Any]]:
        """Start the child and yield its messages; raises WorkerError when it fails.

        A message ``{"error": ...}`` ends the run with that error; anything else is passed on.
        The child is killed if the caller stops iterating early.
        """
        request = {
            key: os.path.abspath(value) if key in _PATH_FIELDS and isinstance(value, str) else value
            for key, value in self._request.items()
        }
        with self._lock:
            if self._cancelled.is_set():
                raise WorkerCancelled("Cancelled")
            self._proc = subprocess.Popen(
                worker_command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=_PACKAGE_DIR,
            )
        stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        stderr_reader.start()
        error: str | None = None
        try:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            try:
                self._proc.stdin.write(json.dumps(request))
                self._proc.stdin.close()
            except BrokenPipeError:
                pass  # the child died at once; its exit status says why below
            for line in self._proc.stdout:
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    log.debug("worker: %s", line.rstrip())
                    continue
                if "error" in message:
                    error = str(message["error"])
                    continue
                yield message
            returncode = self._proc.wait()
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            stderr_reader.join(timeout=5)
        if self._cancelled.is_set():
            raise WorkerCancelled("Cancelled")
        if error is not None:
            raise WorkerError(error)
        if returncode != 0:
            raise WorkerError(self._explain_exit(returncode))

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            log.warning("worker stderr: %s", line.rstrip())
            self._stderr_tail = [*self._stderr_tail[-4:], line.rstrip()]

    def _explain_exit(self, returncode: int) -> str:
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            what = f"llama.cpp crashed ({name})"
            if -returncode == signal.SIGKILL and not self._cancelled.is_set():
                what += ", most likely because the system ran out of memory"
        else:
            what = f"the worker process exited with status {returncode}"
        tail = "; ".join(line for line in self._stderr_tail if line)[-300:]
        return f"{what}{': ' + tail if tail else ''}. Details are in Hearth's log."
