"""Run llama.cpp work (quantize, size predictions, quality measurements) in a child process.

A child process is the only way to make Cancel truly stop `llama_model_quantize` (it has no
abort hook), and a crash inside llama.cpp then costs the job, not the window. The child is
`python -m app.engine.quantize_worker`: it reads one JSON request on stdin and answers with one
JSON object per line on stdout.
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
from typing import Any

log = logging.getLogger(__name__)

WORKER_MODULE = "app.engine.quantize_worker"


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
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self._lock:
            if self._cancelled.is_set():
                raise WorkerCancelled("Cancelled")
            self._proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        stderr_reader.start()
        error: str | None = None
        try:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            try:
                self._proc.stdin.write(json.dumps(self._request))
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
