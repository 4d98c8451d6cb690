"""The door: Host allow-list, CORS allow-list, API keys and the body size limit.

A plain ASGI middleware (no BaseHTTPMiddleware), so streamed replies pass through untouched.
Checks run in this order: Host (defeats DNS rebinding: a page on evil.example that resolves to
127.0.0.1 still sends ``Host: evil.example``), Origin (a browser page may only talk to us from
an origin on the CORS allow-list; preflights are answered here), API key, body size.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.server.config import ServerConfig
from app.server.errors import error_bytes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})  # answered without a key (a readiness probe tells nothing)
_CORS_METHODS = "GET, POST, OPTIONS"
_CORS_HEADERS = "authorization, content-type, x-api-key, openai-organization, openai-project"


def split_host(value: str) -> str:
    """The host part of a Host header, lower-cased: "[::1]:1234" → "::1", "a:80" → "a"."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _headers(scope: Scope) -> dict[str, str]:
    # Repeated headers: the first wins (a second Host header must not bypass the check).
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        found.setdefault(name, raw_value.decode("latin-1"))
    return found


async def _answer(send: Send, status: int, body: bytes,
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, config: ServerConfig) -> None:
        self.app = app
        self.config = config
        self.hosts = config.host_allow_list()
        self.origins = frozenset(o.rstrip("/").lower() for o in config.cors_origins)
        self.keys = tuple(k.encode() for k in config.api_keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        if not host:
            await _answer(send, 400, error_bytes(400, "The request has no Host header.",
                                                 code="missing_host"))
            return
        if split_host(host) not in self.hosts:
            message = (f"Host '{host[:100]}' is not allowed. This server answers only "
                       "requests addressed to this machine (a DNS rebinding guard).")
            await _answer(send, 403, error_bytes(403, message, code="host_not_allowed"))
            return
        origin = headers.get("origin")
        cors: list[tuple[bytes, bytes]] = []
        if origin is not None and not _same_origin(origin, host):
            if origin.rstrip("/").lower() not in self.origins:
                message = (f"Origin '{origin[:100]}' is not on this server's CORS allow-list.")
                await _answer(send, 403, error_bytes(403, message, code="origin_not_allowed"))
                return
            cors = [(b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"vary", b"Origin")]
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                preflight = cors + [
                    (b"access-control-allow-methods", _CORS_METHODS.encode()),
                    (b"access-control-allow-headers", _CORS_HEADERS.encode()),
                    (b"access-control-max-age", b"600"),
                ]
                await send({"type": "http.response.start", "status": 204, "headers": preflight})
                await send({"type": "http.response.body", "body": b""})
                return
        if self.config.keys_required and scope["path"] not in OPEN_PATHS:
            if not self._key_ok(headers):
                message = ("A valid API key is required: send it as 'Authorization: Bearer KEY' "
                           "or 'x-api-key: KEY'.")
                await _answer(send, 401, error_bytes(401, message, code="invalid_api_key"),
                              cors + [(b"www-authenticate", b"Bearer")])
                return
        if cors:
            send = _with_headers(send, cors)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            body = await self._read_body(headers, receive, send, cors)
            if body is None:
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _key_ok(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key", "")
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip() or given
        candidate = given.encode("utf-8", "replace")
        # Every key is compared, so timing says nothing about which one nearly matched.
        return bool(given) and any([hmac.compare_digest(candidate, k) for k in self.keys])

    async def _read_body(self, headers: dict[str, str], receive: Receive, send: Send,
                         cors: list[tuple[bytes, bytes]]) -> bytes | None:
        """The whole body, or None after answering 413 (or when the client went away)."""
        limit = self.config.max_body_bytes
        too_big = error_bytes(413, f"The request body is larger than this server accepts "
                                   f"({limit} bytes).", code="request_too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, too_big, cors)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, too_big, cors)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _same_origin(origin: str, host: str) -> bool:
    # A page served by this server itself (none today) may call it without CORS.
    return origin.lower() in (f"http://{host.lower()}", f"https://{host.lower()}")


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": list(message.get("headers", [])) + extra}
        await send(message)
    return wrapped


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body only the disconnect is left: the server's own receive reports it,
        # which is how a stream learns its client went away.
        return await receive()

    return replayed
