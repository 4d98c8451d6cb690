"""Tools a model can call: the built-ins and MCP servers' tools, run safely (Qt-free).

Everything here is blocking: the window calls it from a worker thread, never the GUI thread.

Typical use by the agent loop::

    from app.services.tools import (BuiltinTools, McpServers, ToolBox, ToolPermissions,
                                    load_mcp_config)

    servers = McpServers().connect(load_mcp_config())   # mcp.json in the data folder
    # servers.errors: {server name: why it is not connected}, to show the user
    box = ToolBox([BuiltinTools(store), *servers.connections.values()])
    permissions = ToolPermissions(store)
    request["tools"] = box.openai_tools()                # OpenAI function-tool dicts
    # (app.engine.tools.parse_tools(box.openai_tools()) gives the engine's ToolSpecs)
    # the model asks for a call: an app.engine.types.ToolCall, `call.name`, `call.arguments`
    name, arguments_json = call.name, call.arguments
    tool = box.tool(name)                  # None: unknown name; box.run answers that too
    if tool and not permissions.is_always_allowed(tool):
        ...ask the user: Allow once / Always allow (permissions.always_allow(tool)) / Deny
    result = box.run(name, arguments_json) # ToolResult(text, is_error, truncated)
    ...feed result.text back as a `tool` message; show it as the tool's output
    servers.close()                        # stops the servers' processes and threads

Contract:
- ``ToolBox.run`` never raises. Unknown tools, arguments that are not a JSON object or do not
  match the tool's schema (checked with `jsonschema`), failures, crashes and timeouts
  (``ToolBox(timeout_s=...)``, MCP calls only: built-ins are bounded by construction) all
  come back as ``ToolResult(is_error=True)`` with text the model can read.
- ``ToolResult.text`` is untrusted plain text: control characters removed, at most
  ``max_output_bytes`` (32 KB) with a visible truncation note; MCP images, audio and binary
  resources are summarised ("[image omitted: image/png]"). Nothing here acts on a result:
  a result that asks for another call is just text; every call still goes through the
  approval above. ``Tool.destructive_hint`` is the server's own claim, not a reason to skip
  approval.
- Tool names are unique in a ToolBox: an MCP tool that clashes with another source's becomes
  ``<server>__<name>``. Permissions are remembered per ``Tool.key`` = (source, name at the
  source), where source is "builtin" or the server's name in mcp.json.
- mcp.json (``mcp_config_path()``, LM Studio / Claude Desktop format) is read with
  ``load_mcp_config`` and written with ``save_mcp_config`` / ``import_mcp_config``, which
  validate first (``McpConfigError`` names the entry at fault). The folders read_file may read
  are ``GrantedFolders(store)``.
"""

from app.services.tools.builtin import BuiltinTools
from app.services.tools.files import GrantedFolders
from app.services.tools.mcp_config import (
    McpConfigError,
    McpServerConfig,
    import_mcp_config,
    load_mcp_config,
    mcp_config_path,
    parse_mcp_config,
    save_mcp_config,
)
from app.services.tools.mcp_connection import McpConnection, McpError
from app.services.tools.mcp_servers import McpServers
from app.services.tools.permissions import ToolPermissions
from app.services.tools.toolbox import ToolBox, ToolSource
from app.services.tools.values import Tool, ToolResult

__all__ = [
    "BuiltinTools",
    "GrantedFolders",
    "McpConfigError",
    "McpConnection",
    "McpError",
    "McpServerConfig",
    "McpServers",
    "Tool",
    "ToolBox",
    "ToolPermissions",
    "ToolResult",
    "ToolSource",
    "import_mcp_config",
    "load_mcp_config",
    "mcp_config_path",
    "parse_mcp_config",
    "save_mcp_config",
]
