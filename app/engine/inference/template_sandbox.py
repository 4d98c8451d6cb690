"""Render untrusted chat templates in a long-lived child process, bounded in time and memory.

The child (`app.engine.inference.template_worker`) is started isolated (``python -I``, cwd in
Hearth's data folder) and caps its own address space; here each render gets a deadline and can
be cancelled. A render that breaks a limit costs the child (it is killed and a fresh one starts
on the next render), never the caller: the thread waiting here polls ``cancelled`` and the
deadline every few milliseconds, so the engine host's Cancel stops a template check promptly.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from app.engine.inference import template_worker
from app.engine.paths import data_paths

log = logging.getLogger(__name__)

RENDER_DEADLINE_S = 2.0
_START_TIMEOUT_S = 30.0
_POLL_S = 0.02
_WORKER_FILE = Path(template_worker.__file__).resolve()

FailureKind = Literal["syntax", "error", "time", "memory", "size", "crashed", "cancelled"]


class TemplateFailure(Exception):
    """A render did not produce a prompt; ``kind`` says why, ``detail`` is the template's text."""

    def __init__(self, kind: FailureKind, detail: str = "") -> None:
        super().__init__(detail or kind)
        self.kind = kind
        self.detail = detail


def _too_big(request: dict[str, Any]) -> bool:
    """More text than any prompt may hold (`template_worker.MAX_PROMPT_CHARS`): refused here,
    before the child has to read it."""
    size = len(request["template"])
    for message in request["messages"]:
        size += sum(len(v) for v in message.values() if isinstance(v, str))
        if message.get("tool_calls"):
            size += len(json.dumps(message["tool_calls"]))
    if request.get("tools"):
        size += len(json.dumps(request["tools"]))
    return size > template_worker.MAX_PROMPT_CHARS


def _child_cwd() -> str:
    root = data_paths().root
    return str(root) if root.is_dir() else tempfile.gettempdir()


class _Child:
    """One running worker process and the thread that reads its answers."""

    def __init__(self) -> None:
        # -I: no user site, no PYTHON* variables, and (3.11+) the script's folder is not put
        # on sys.path, so nothing beside the worker file or in the cwd can be imported.
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(_WORKER_FILE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=_child_cwd(),
        )
        self.answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="hearth-template-reader",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.answers.put(json.loads(line))
            except json.JSONDecodeError:
                log.debug("template worker: %s", line.rstrip())
        self.answers.put(None)  # end of output: the child has exited

    def send(self, request: dict[str, Any]) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.stop()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._reader.join(timeout=1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("template worker %s did not exit", self.proc.pid)

    def stderr_tail(self) -> str:
        """The end of what the child wrote to stderr; call after `stop`."""
        try:
            assert self.proc.stderr is not None
            return self.proc.stderr.read()[-300:].strip()
        except (OSError, ValueError):
            return ""


def _kill(holder: list[_Child | None]) -> None:
    child, holder[0] = holder[0], None
    if child is not None:
        child.kill()


class TemplateSandbox:
    """Renders templates in one child process, started on first use; thread-safe.

    ``close`` stops the child; a sandbox dropped without it is closed by a finalizer.
    """

    def __init__(self, deadline_s: float = RENDER_DEADLINE_S) -> None:
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._holder: list[_Child | None] = [None]  # shared with the finalizer
        self._finalizer = weakref.finalize(self, _kill, self._holder)

    def render(
        self,
        template: str,
        messages: Sequence[dict[str, Any]],
        bos_token: str = "",
        eos_token: str = "",
        cancelled: Callable[[], bool] | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> str:
        """The rendered prompt; raises `TemplateFailure` (kind "size" for a conversation and
        tools too big to render into any context window)."""
        request: dict[str, Any] = {"template": template, "messages": list(messages),
                                   "bos_token": bos_token, "eos_token": eos_token}
        if tools:
            request["tools"] = list(tools)
        if _too_big(request):
            raise TemplateFailure("size")
        with self._lock:
            if cancelled is not None and cancelled():
                raise TemplateFailure("cancelled")
            child = self._child(cancelled)
            if not child.send(request):
                # It died since the last render (killed from outside?): one fresh try.
                self._restart()
                child = self._child(cancelled)
                if not child.send(request):
                    raise self._crashed(child)
            answer = self._wait(child, cancelled, self.deadline_s)
            if "limit" in answer:
                self._restart()  # the child exits after a limit; reap it now
        if "prompt" in answer:
            return str(answer["prompt"])
        if "limit" in answer:
            raise TemplateFailure("memory" if answer["limit"] == "memory" else "size")
        if answer.get("stage") == "compile":
            raise TemplateFailure("syntax", str(answer.get("error", "")))
        raise TemplateFailure("error", str(answer.get("error", "")))

    def close(self) -> None:
        with self._lock:
            self._finalizer()

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before the first render): for tests."""
        child = self._holder[0]
        return child.proc.pid if child is not None and child.alive() else None

    # -- with the lock held --------------------------------------------------------------------
    def _child(self, cancelled: Callable[[], bool] | None) -> _Child:
        """The running child, started (and waited for) if needed: the render deadline counts
        from a child ready to render, so a slow interpreter start on a busy machine is not
        blamed on the template."""
        child = self._holder[0]
        if child is None or not child.alive():
            if child is not None:
                child.kill()
            child = self._holder[0] = _Child()
            try:
                ready = self._wait(child, cancelled, _START_TIMEOUT_S)
            except TemplateFailure as exc:
                if exc.kind == "time":
                    raise TemplateFailure("crashed", "the sandbox did not start") from exc
                raise
            if "ready" not in ready:
                self._restart()
                raise TemplateFailure("crashed", f"unexpected first answer {ready!r:.100}")
        return child

    def _restart(self) -> None:
        _kill(self._holder)

    def _wait(self, child: _Child, cancelled: Callable[[], bool] | None,
              seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            if cancelled is not None and cancelled():
                self._restart()
                raise TemplateFailure("cancelled")
            left = deadline - time.monotonic()
            if left <= 0:
                self._restart()
                raise TemplateFailure("time", f"{seconds:g}")
            try:
                answer = child.answers.get(timeout=min(_POLL_S, left))
            except queue.Empty:
                continue
            if answer is None:
                raise self._crashed(child)
            return answer

    def _crashed(self, child: _Child) -> TemplateFailure:
        child.stop()
        code = child.proc.returncode
        tail = child.stderr_tail()
        child.kill()
        self._holder[0] = None
        log.warning("template worker exited with %s: %s", code, tail)
        # Killed by nobody here: the OOM killer is the likeliest sender of SIGKILL.
        if code == -signal.SIGKILL:
            return TemplateFailure("memory", "killed")
        if code is not None and code < 0:
            try:
                status = signal.Signals(-code).name
            except ValueError:
                status = f"signal {-code}"
        else:
            status = f"exit status {code}"
        return TemplateFailure("crashed", status + (f": {tail}" if tail else ""))
