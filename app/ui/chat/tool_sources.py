"""The tools the window offers: the built-ins, and the MCP servers of mcp.json, connected off
the GUI thread (starting a server can take seconds) and closed when the window closes."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.models.store import Store
from app.services.tools import (
    BuiltinTools,
    McpServers,
    ToolBox,
    ToolPermissions,
    import_mcp_config,
    load_mcp_config,
)


class ToolSources(QObject):
    changed = Signal()  # the tools on offer or a server's state changed
    _connected = Signal(object, object)  # McpServers, mcp.json error text (worker → GUI)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.permissions = ToolPermissions(store)
        self._servers = McpServers()
        self.config_error = ""  # why mcp.json could not be read, in words
        self.connecting = False
        self._started = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._latest: McpServers | None = None
        self._again = False
        self.box = ToolBox([BuiltinTools(store)])
        self._connected.connect(self._on_connected)

    # -- state ---------------------------------------------------------------------------------
    def server_states(self) -> list[tuple[str, str]]:
        """(server name, "connected · n tools" or why not), for the settings panel."""
        states = [(name, f"connected · {len(c.list_tools())} tools")
                  for name, c in self._servers.connections.items()]
        states += [(name, f"not connected: {error}") for name, error in
                   self._servers.errors.items()]
        return states

    # -- actions -------------------------------------------------------------------------------
    def ensure_connected(self) -> None:
        """Connect mcp.json's servers once (the first chat with tools on asks for it)."""
        if not self._started:
            self.reconnect()

    def reconnect(self) -> None:
        if self._closed or self.connecting:
            return
        self._started = self.connecting = True
        self.changed.emit()
        old, self._servers = self._servers, McpServers()
        self._rebuild()

        def work() -> None:
            old.close()
            servers, error = McpServers(), ""
            try:
                servers.connect(load_mcp_config())
            except Exception as exc:  # a bad mcp.json is a message, not a crash
                error = str(exc)
            self._latest = servers  # close() stops them even if the signal never lands
            self._connected.emit(servers, error)

        self._thread = threading.Thread(target=work, name="hearth-mcp-connect", daemon=True)
        self._thread.start()

    def import_config(self, path: str | Path) -> None:
        """Copy an mcp.json in (checked first: `McpConfigError` names what is wrong) and
        connect its servers."""
        import_mcp_config(Path(path))
        self._started = False
        if self.connecting:
            # The running connect reads the old file; connect again once it is done.
            self._again = True
            return
        self.reconnect()

    def close(self) -> None:
        """Stop every server (the window is closing)."""
        self._closed = True
        if self._thread is not None:
            self._thread.join(15)
        self._servers.close()
        if self._latest is not None:
            self._latest.close()

    # -- internals -----------------------------------------------------------------------------
    def _on_connected(self, servers: McpServers, error: str) -> None:
        self.connecting = False
        if self._closed:
            servers.close()
            return
        self._servers, self.config_error = servers, error
        self._rebuild()
        self.changed.emit()
        if self._again:
            self._again = False
            self.reconnect()

    def _rebuild(self) -> None:
        self.box = ToolBox([BuiltinTools(self._store), *self._servers.connections.values()])
