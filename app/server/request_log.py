"""A bounded, thread-safe log of the server's requests, for the Developer page.

Routes note what they know (model, tokens, speed) in the request's state; the middleware here
writes one entry when the response has been sent, whatever its status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.server.security import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
DEFAULT_LOG_SIZE = 500
LOG_STATE_KEY = "hearth_log"  # scope["state"][LOG_STATE_KEY]: a dict the routes fill in


@dataclass(frozen=True)
class RequestLogEntry:
    time: float  # epoch seconds when the request arrived
    method: str
    path: str
    status: int
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_second: float | None = None
    duration_s: float = 0.0


class RequestLog:
    def __init__(self, size: int = DEFAULT_LOG_SIZE) -> None:
        self._entries: deque[RequestLogEntry] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[RequestLogEntry], None]] = []

    def add(self, entry: RequestLogEntry) -> None:
        with self._lock:
            self._entries.append(entry)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(entry)  # called on the server's thread: a GUI must queue it
            except Exception:  # a broken listener must not break the request it logs
                log.exception("request log listener failed")

    def entries(self) -> list[RequestLogEntry]:
        with self._lock:
            return list(self._entries)

    def subscribe(self, listener: Callable[[RequestLogEntry], None]) -> Callable[[], None]:
        """Call ``listener`` for every new entry; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe


def note(state: Any, **values: Any) -> None:
    """Record what a route knows about its request (``request.state``) for the log entry."""
    info = getattr(state, LOG_STATE_KEY, None)
    if info is None:
        info = {}
        setattr(state, LOG_STATE_KEY, info)
    info.update(values)


def note_finished(state: Any, finished: Any) -> None:
    """The token counts and speed of a finished generation (an engine `Finished`)."""
    note(state, prompt_tokens=finished.stats.prompt_tokens,
         completion_tokens=finished.stats.generated_tokens,
         tokens_per_second=round(finished.stats.tokens_per_second, 2))


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.time()
        clock = time.monotonic()
        status = 500

        async def logged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            if scope.get("method") != "OPTIONS":
                info = scope.get("state", {}).get(LOG_STATE_KEY, {})
                self.log.add(RequestLogEntry(
                    time=started, method=scope.get("method", ""), path=scope.get("path", ""),
                    status=status, model=info.get("model"),
                    prompt_tokens=info.get("prompt_tokens"),
                    completion_tokens=info.get("completion_tokens"),
                    tokens_per_second=info.get("tokens_per_second"),
                    duration_s=time.monotonic() - clock))
