"""An MCP tool result as plain text: text parts kept, everything else summarised, nothing run."""

from __future__ import annotations

import json
from typing import Any

import mcp.types as mcp_types

from app.services.tools.values import Tool, ToolResult


def _part(part: Any) -> str:
    if isinstance(part, mcp_types.TextContent):
        return part.text
    if isinstance(part, mcp_types.ImageContent):
        return f"[image omitted: {part.mime_type[:60]}]"
    if isinstance(part, mcp_types.AudioContent):
        return f"[audio omitted: {part.mime_type[:60]}]"
    if isinstance(part, mcp_types.ResourceLink):
        return f"[resource link: {str(part.uri)[:300]}]"
    if isinstance(part, mcp_types.EmbeddedResource):
        resource = part.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return f"[resource {str(resource.uri)[:300]}]\n{resource.text}"
        return f"[resource omitted: {str(resource.uri)[:300]}]"
    return f"[{getattr(part, 'type', 'unknown')} content omitted]"[:80]


def result_text(result: mcp_types.CallToolResult) -> ToolResult:
    """The plain text of a tool result; structured content is shown as JSON when no text is."""
    # Joined whole (the SDK holds it all already) so the ToolBox's note gives the true size.
    text = "\n".join(_part(part) for part in result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    return ToolResult(text, bool(result.is_error))


def to_tool(server: str, tool: mcp_types.Tool) -> Tool:
    annotations = tool.annotations
    return Tool(
        name=tool.name,
        description=tool.description or tool.title or "",
        parameters=dict(tool.input_schema),
        source=server,
        destructive_hint=annotations.destructive_hint if annotations is not None else None,
        remote_name=tool.name,
    )
