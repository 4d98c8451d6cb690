"""mcp.json: the MCP servers the user added, in the format LM Studio and Claude Desktop use.

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "some-server"], "env": {"KEY": "…"}},
        "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer …"}}
    }}

A stdio entry has `command` (plus optional `args`, `env`, `cwd`); a streamable HTTP entry has
`url` (plus optional `headers`). `"disabled": true` keeps an entry without connecting it, and
a `type` of "stdio", "http" or "streamable-http" is accepted; other keys are ignored so files
written for other apps still load. The file lives in Hearth's data folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.engine.paths import data_paths

MCP_CONFIG_NAME = "mcp.json"
MAX_CONFIG_BYTES = 1024 * 1024
_HTTP_TYPES = {"http", "streamable-http", "streamable_http", "streamableHttp"}


class McpConfigError(ValueError):
    """mcp.json is not valid; the message names the file position or the entry at fault."""


@dataclass(frozen=True)
class McpServerConfig:
    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    disabled: bool = False

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"


def mcp_config_path() -> Path:
    """Where Hearth keeps mcp.json (the data folder; `HEARTH_HOME` in tests)."""
    return data_paths().root / MCP_CONFIG_NAME


def _strings(entry: str, key: str, value: Any, kind: type) -> Any:
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise McpConfigError(f"server {entry!r}: {key!r} must be a list of strings")
        return tuple(value)
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise McpConfigError(f"server {entry!r}: {key!r} must be an object of string values")
    return dict(value)


def _server(name: str, entry: Any) -> McpServerConfig:
    if not name.strip():
        raise McpConfigError("a server in 'mcpServers' has an empty name")
    if not isinstance(entry, dict):
        raise McpConfigError(f"server {name!r}: must be an object with 'command' or 'url'")
    kind = entry.get("type")
    if kind == "sse":
        raise McpConfigError(f"server {name!r}: the old SSE transport is not supported; use "
                             f"the server's streamable HTTP endpoint")
    if kind is not None and kind != "stdio" and kind not in _HTTP_TYPES:
        raise McpConfigError(f"server {name!r}: unknown type {str(kind)[:40]!r}")
    if ("command" in entry) == ("url" in entry):
        raise McpConfigError(f"server {name!r}: needs exactly one of 'command' (a program to "
                             f"run) or 'url' (a streamable HTTP endpoint)")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise McpConfigError(f"server {name!r}: 'disabled' must be true or false")
    if "command" in entry:
        command = entry["command"]
        if not isinstance(command, str) or not command.strip():
            raise McpConfigError(f"server {name!r}: 'command' must be a non-empty string")
        cwd = entry.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise McpConfigError(f"server {name!r}: 'cwd' must be a string")
        return McpServerConfig(
            name,
            command=command,
            args=_strings(name, "args", entry.get("args", []), list),
            env=_strings(name, "env", entry.get("env", {}), dict),
            cwd=cwd,
            disabled=disabled,
        )
    url = entry["url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise McpConfigError(f"server {name!r}: 'url' must be an http:// or https:// address")
    return McpServerConfig(
        name,
        url=url,
        headers=_strings(name, "headers", entry.get("headers", {}), dict),
        disabled=disabled,
    )


def parse_mcp_config(text: str) -> list[McpServerConfig]:
    """The servers in an mcp.json text; McpConfigError with a clear reason otherwise."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise McpConfigError(f"mcp.json is larger than {MAX_CONFIG_BYTES // 1024} KB")
    try:
        data = json.loads(text) if text.strip() else {"mcpServers": {}}
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"mcp.json is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise McpConfigError("mcp.json is nested too deeply") from exc
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise McpConfigError('mcp.json must be an object with an "mcpServers" object in it')
    return [_server(name, entry) for name, entry in data["mcpServers"].items()]


def load_mcp_config(path: Path | None = None) -> list[McpServerConfig]:
    """The servers in the app's mcp.json (none when the file does not exist yet)."""
    path = path or mcp_config_path()
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise McpConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_mcp_config(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise McpConfigError("mcp.json is not UTF-8 text") from exc


def save_mcp_config(text: str, path: Path | None = None) -> list[McpServerConfig]:
    """Validate ``text`` and make it the app's mcp.json, atomically (never half written)."""
    servers = parse_mcp_config(text)
    path = path or mcp_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mcp-", suffix=".json.part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return servers


def import_mcp_config(source: Path, path: Path | None = None) -> list[McpServerConfig]:
    """Add the servers of another app's mcp.json; an entry of the same name is replaced."""
    load_mcp_config(source)  # validate first: a bad file changes nothing
    incoming = json.loads(Path(source).read_text(encoding="utf-8-sig"))["mcpServers"]
    path = path or mcp_config_path()
    current: dict[str, Any] = {"mcpServers": {}}
    if path.exists():
        load_mcp_config(path)
        current = json.loads(path.read_text(encoding="utf-8-sig"))
    current["mcpServers"].update(incoming)
    return save_mcp_config(json.dumps(current, indent=2, ensure_ascii=False) + "\n", path)
