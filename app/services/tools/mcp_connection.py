"""One connected MCP server behind a synchronous facade.

The `mcp` SDK is async: each connection runs its own asyncio loop on a private daemon thread
("hearth-mcp-<name>"); the public methods submit coroutines to it and wait with a timeout.
`close()` ends the session, which stops the server (the SDK closes its stdin, then
terminates and kills its process tree) and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
from collections.abc import Coroutine
from concurrent.futures import CancelledError
from contextlib import AsyncExitStack
from typing import IO, Any, TypeVar

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from app.services.tools.mcp_config import McpServerConfig
from app.services.tools.mcp_content import result_text, to_tool
from app.services.tools.values import Tool, ToolResult

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
_CLOSE_TIMEOUT_S = 15.0  # the SDK's stop sequence is bounded (about 6 s at worst)
_MAX_TOOL_PAGES = 20
_STDERR_TAIL = 1500
_T = TypeVar("_T")


class McpError(RuntimeError):
    """An MCP server could not be reached or stopped answering; the message is for the user."""


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpConnection:
    """A connected MCP server: list its tools and call them, from any thread."""

    def __init__(self, config: McpServerConfig, *, connect_timeout_s: float = CONNECT_TIMEOUT_S):
        self.config = config
        self.name = config.name
        self._connect_timeout_s = connect_timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, name=f"hearth-mcp-{config.name}"[:60], daemon=True
        )
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._stop: asyncio.Event | None = None
        self._main: asyncio.Task[None] | None = None
        self._client: Client | None = None
        self._error: BaseException | None = None
        # The server's stderr, for the reason a start failed; read through a handle of our own.
        self._stderr: IO[str] = tempfile.NamedTemporaryFile(
            "w", prefix="hearth-mcp-", suffix=".log", encoding="utf-8"
        )
        self._tools: list[Tool] = []

    # ---- lifetime ---------------------------------------------------------------------------

    def connect(self) -> McpConnection:
        """Start the server (or reach its URL), handshake and list its tools; McpError if not."""
        self._thread.start()
        if not self._ready.wait(self._connect_timeout_s) or self._client is None:
            reason = (self._failure() if self._error is not None
                      else f"no answer within {self._connect_timeout_s:g} s")
            self.close()
            raise McpError(f"MCP server {self.name!r} could not be started: {reason}")
        try:
            self._tools = self._submit(self._list_tools(), self._connect_timeout_s)
        except McpError:
            self.close()
            raise
        return self

    def close(self) -> None:
        """End the session and stop the server; safe to call twice, and from any thread."""
        self._closing.set()
        if self._thread.ident is None:  # never connected
            self._loop.close()
            self._stderr.close()
            return
        if self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(self._request_stop)
            except RuntimeError:  # the loop already closed between the check and the call
                pass
            self._thread.join(_CLOSE_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("MCP server %r did not stop within %s s", self.name, _CLOSE_TIMEOUT_S)
        if not self._thread.is_alive():
            self._stderr.close()

    def __enter__(self) -> McpConnection:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request_stop(self) -> None:
        if self._stop is not None and self._client is not None:
            self._stop.set()
        elif self._main is not None:
            self._main.cancel()  # still connecting: the SDK's shutdown is cancellation-safe

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            try:
                # Calls still waiting end now, so no caller waits out its whole timeout.
                pending = asyncio.all_tasks(self._loop)
                for task in pending:
                    task.cancel()
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
            finally:
                self._loop.close()

    async def _serve(self) -> None:
        self._main = asyncio.current_task()
        self._stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack:
                if self._closing.is_set():  # closed before this thread got going
                    return
                self._client = await stack.enter_async_context(self._make_client(stack))
                self._ready.set()
                if not self._closing.is_set():
                    await self._stop.wait()
        except BaseException as exc:  # reported by connect() or by the next call
            self._error = exc
            if not isinstance(exc, asyncio.CancelledError | Exception):
                raise
        finally:
            self._client = None
            self._ready.set()

    def _make_client(self, stack: AsyncExitStack) -> Client:
        config = self.config
        if config.command is not None:
            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=config.env or None,
                cwd=config.cwd,
            )
            return Client(stdio_client(params, errlog=self._stderr))
        http = httpx2.AsyncClient(headers=config.headers, timeout=httpx2.Timeout(30, read=300))
        stack.push_async_callback(http.aclose)
        assert config.url is not None
        return Client(streamable_http_client(config.url, http_client=http))

    def _failure(self) -> str:
        reason = _reason(self._error) if self._error is not None else "the connection closed"
        tail = self._stderr_tail()
        return f"{reason}; its last output: {tail}" if tail else reason

    def _stderr_tail(self) -> str:
        try:
            with open(self._stderr.name, "rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - _STDERR_TAIL))
                return handle.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    # ---- calls ------------------------------------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, _T], timeout_s: float) -> _T:
        if self._client is None or self._loop.is_closed():
            coro.close()
            raise McpError(f"MCP server {self.name!r} is not connected: {self._failure()}")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            # The coroutine has its own timeout; this one only guards a loop that stopped.
            return future.result(timeout_s + 5.0)
        except TimeoutError as exc:
            future.cancel()
            raise McpError(f"MCP server {self.name!r} did not answer in {timeout_s:g} s") from exc
        except CancelledError as exc:
            raise McpError(f"MCP server {self.name!r} was disconnected") from exc

    @property
    def tools(self) -> list[Tool]:
        """The tools the server listed when it connected."""
        return list(self._tools)

    def list_tools(self) -> list[Tool]:
        return self.tools

    async def _list_tools(self) -> list[Tool]:
        client = self._connected()
        tools: list[Tool] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                for _ in range(_MAX_TOOL_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(to_tool(self.name, tool) for tool in page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
        except TimeoutError as exc:
            raise McpError(f"MCP server {self.name!r} did not list its tools in "
                           f"{self._connect_timeout_s:g} s") from exc
        except Exception as exc:
            raise McpError(f"MCP server {self.name!r} could not list its tools: "
                           f"{_reason(exc)}") from exc
        return tools

    def _connected(self) -> Client:
        client = self._client
        if client is None:
            raise McpError(f"MCP server {self.name!r} is not connected: {self._failure()}")
        return client

    def call(self, name: str, arguments: dict[str, Any], timeout_s: float) -> ToolResult:
        """Call a tool; a timeout, a crash or a protocol error comes back as an error result."""
        try:
            return self._submit(self._call(name, arguments, timeout_s), timeout_s)
        except McpError as exc:
            return ToolResult.error(str(exc))

    async def _call(self, name: str, arguments: dict[str, Any], timeout_s: float) -> ToolResult:
        client = self._connected()
        try:
            async with asyncio.timeout(timeout_s):
                result = await client.call_tool(name, arguments)
        except TimeoutError:
            return ToolResult.error(f"{name} on MCP server {self.name!r} did not finish within "
                                    f"{timeout_s:g} s and was cancelled")
        except Exception as exc:
            if self._stop is not None and self._stop.is_set() or self._client is None:
                return ToolResult.error(f"MCP server {self.name!r} was disconnected")
            return ToolResult.error(f"{name} on MCP server {self.name!r} failed: {_reason(exc)}"
                                    + self._exit_note())
        return result_text(result)

    def _exit_note(self) -> str:
        tail = self._stderr_tail()
        return f" (server output: {tail[-300:]})" if tail else ""
