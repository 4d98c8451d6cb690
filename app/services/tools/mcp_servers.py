"""All MCP servers of mcp.json, connected side by side; one that fails does not stop the rest."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from app.services.tools.mcp_config import McpServerConfig
from app.services.tools.mcp_connection import CONNECT_TIMEOUT_S, McpConnection, McpError


class McpServers:
    """The connected servers (``connections``) and why the others are not (``errors``)."""

    def __init__(self) -> None:
        self.connections: dict[str, McpConnection] = {}
        self.errors: dict[str, str] = {}

    def connect(
        self, configs: Iterable[McpServerConfig], *, timeout_s: float = CONNECT_TIMEOUT_S
    ) -> McpServers:
        """Connect every enabled server, in parallel; blocking (call it off the GUI thread)."""
        wanted = [c for c in configs if not c.disabled and c.name not in self.connections]
        if not wanted:
            return self

        def attempt(config: McpServerConfig) -> tuple[str, McpConnection | str]:
            try:
                return config.name, McpConnection(config, connect_timeout_s=timeout_s).connect()
            except McpError as exc:
                return config.name, str(exc)

        with ThreadPoolExecutor(len(wanted), thread_name_prefix="hearth-mcp-connect") as pool:
            for name, outcome in pool.map(attempt, wanted):
                if isinstance(outcome, McpConnection):
                    self.connections[name] = outcome
                    self.errors.pop(name, None)
                else:
                    self.errors[name] = outcome
        return self

    def close(self) -> None:
        """Stop every server and its thread."""
        connections, self.connections = self.connections, {}
        for connection in connections.values():
            connection.close()

    def __enter__(self) -> McpServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
