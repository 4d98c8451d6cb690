"""mcp.json in the LM Studio / Claude Desktop format: parsing, clear errors, saving, importing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.services.tools import (
    McpConfigError,
    import_mcp_config,
    load_mcp_config,
    mcp_config_path,
    parse_mcp_config,
    save_mcp_config,
)

CLAUDE_DESKTOP = """{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
      "env": {"DEBUG": "1"}
    },
    "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer x"}},
    "paused": {"command": "uvx", "args": ["something"], "disabled": true, "autoApprove": []}
  }
}"""


def test_reads_stdio_and_http_entries() -> None:
    files, remote, paused = parse_mcp_config(CLAUDE_DESKTOP)
    assert (files.name, files.transport, files.command) == ("filesystem", "stdio", "npx")
    assert files.args == ("-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop")
    assert files.env == {"DEBUG": "1"}
    assert (remote.transport, remote.url) == ("http", "https://mcp.example.com/mcp")
    assert remote.headers == {"Authorization": "Bearer x"}
    assert paused.disabled and not files.disabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"mcpServers": {"a": {"command": "x",}}}', "not valid JSON: Expecting property name"),
        ('{"mcpServers": {\n"a": {"command": "x"}\n', "line 3"),
        ('{"servers": {}}', 'with an "mcpServers" object'),
        ("[1, 2]", 'with an "mcpServers" object'),
        ('{"mcpServers": {"fs": "npx"}}', "server 'fs': must be an object"),
        ('{"mcpServers": {"fs": {"args": ["a"]}}}', "server 'fs': needs exactly one of"),
        ('{"mcpServers": {"fs": {"command": "x", "url": "http://a"}}}', "exactly one of"),
        ('{"mcpServers": {"fs": {"command": ""}}}', "server 'fs': 'command' must be a non-empty"),
        ('{"mcpServers": {"fs": {"command": "x", "args": "-y"}}}', "'args' must be a list"),
        ('{"mcpServers": {"fs": {"command": "x", "args": [1]}}}', "'args' must be a list"),
        ('{"mcpServers": {"fs": {"command": "x", "env": {"K": 1}}}}', "'env' must be an object"),
        ('{"mcpServers": {"web": {"url": "ftp://host/x"}}}', "server 'web': 'url' must be an"),
        ('{"mcpServers": {"web": {"url": "file:///etc/passwd"}}}', "'url' must be an http"),
        ('{"mcpServers": {"web": {"url": "http://h", "headers": []}}}', "'headers' must be"),
        ('{"mcpServers": {"old": {"url": "http://h/sse", "type": "sse"}}}', "SSE transport"),
        ('{"mcpServers": {"x": {"command": "x", "disabled": "yes"}}}', "'disabled' must be"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_errors_name_the_entry_or_the_position(text: str, message: str) -> None:
    with pytest.raises(McpConfigError) as caught:
        parse_mcp_config(text)
    assert message in str(caught.value)


def test_the_file_lives_in_the_data_folder_and_is_validated_before_it_is_saved(
    hearth_home: Path,
) -> None:
    assert mcp_config_path() == hearth_home / "mcp.json"
    assert load_mcp_config() == []  # no file yet: no servers, no error
    save_mcp_config('{"mcpServers": {"a": {"command": "x"}}}')
    assert [s.name for s in load_mcp_config()] == ["a"]
    with pytest.raises(McpConfigError, match="server 'b'"):
        save_mcp_config('{"mcpServers": {"b": {}}}')
    assert [s.name for s in load_mcp_config()] == ["a"]  # the good file is untouched
    assert [p.name for p in hearth_home.iterdir() if "mcp" in p.name] == ["mcp.json"]


def test_a_damaged_file_on_disk_is_a_clear_error(hearth_home: Path) -> None:
    mcp_config_path().write_bytes(b"\xff\xfe{")
    with pytest.raises(McpConfigError, match="not UTF-8"):
        load_mcp_config()
    mcp_config_path().write_text('{"mcpServers": {"a": {"command": 5}}}')
    with pytest.raises(McpConfigError, match="server 'a'"):
        load_mcp_config()


def test_import_adds_another_apps_servers(hearth_home: Path, tmp_path: Path) -> None:
    save_mcp_config('{"mcpServers": {"mine": {"command": "x"}, "filesystem": {"command": "old"}}}')
    other = tmp_path / "claude_desktop_config.json"
    other.write_text(CLAUDE_DESKTOP, encoding="utf-8")
    servers = import_mcp_config(other)
    assert [s.name for s in servers] == ["mine", "filesystem", "remote", "paused"]
    assert {s.name: s.command for s in load_mcp_config()}["filesystem"] == "npx"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"mcpServers": {"bad": {"url": "nope"}}}))
    with pytest.raises(McpConfigError, match="server 'bad'"):
        import_mcp_config(broken)
    assert len(load_mcp_config()) == 4
