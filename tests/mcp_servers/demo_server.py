"""A real MCP server for the tests (run as `python demo_server.py`, stdio transport)."""

from __future__ import annotations

import os
import sys

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import ImageContent, TextContent, ToolAnnotations

server = MCPServer("demo")


@server.tool(annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
def add(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def hang() -> str:
    """Never answers."""
    await anyio.sleep(3600)
    return "unreachable"


@server.tool(structured_output=False)
def huge() -> str:
    """Ten megabytes of text."""
    return "0123456789" * 1_000_000


@server.tool(structured_output=False)
def picture() -> list[TextContent | ImageContent]:
    """A caption and an image."""
    return [TextContent(text="a red dot"), ImageContent(data="iVBORw0KGgo=", mime_type="image/png")]


@server.tool()
def crash() -> str:
    """Dies mid-call, as a buggy server would."""
    print("fatal: the demo server crashed", file=sys.stderr, flush=True)
    os._exit(3)


if __name__ == "__main__":
    server.run()
