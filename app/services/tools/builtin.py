"""Hearth's built-in tools, harmless by default: they compute or read, never change anything.

calculator, current_datetime, search_chats (the Store's full-text search) and read_file
(read-only, inside the folders the user granted). They run on the caller's thread and are
bounded by construction (expression limits, a result count, a file size), so no timeout
thread is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.services.tools.calculator import CalcError, evaluate, format_number
from app.services.tools.files import FileAccessError, GrantedFolders, read_granted
from app.services.tools.values import BUILTIN, Tool, ToolResult

MAX_SEARCH_RESULTS = 20
_TITLE_CHARS = 80

_TOOLS = (
    Tool(
        "calculator",
        "Evaluate an arithmetic expression exactly: + - * / // % ** and parentheses, "
        "functions such as sqrt, log, sin, round, factorial and the constants pi, e, tau.",
        {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. (2+3)*4**2"}},
            "required": ["expression"],
            "additionalProperties": False,
        },
        BUILTIN,
        destructive_hint=False,
    ),
    Tool(
        "current_datetime",
        "The current local date, time, weekday and time zone of the user's computer.",
        {"type": "object", "properties": {}, "additionalProperties": False},
        BUILTIN,
        destructive_hint=False,
    ),
    Tool(
        "search_chats",
        "Search the user's saved chats for messages containing words; returns each match's "
        "chat title and a short snippet.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 500},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_RESULTS},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        BUILTIN,
        destructive_hint=False,
    ),
    Tool(
        "read_file",
        "Read a text file (or list a folder) inside the folders the user shared with tools. "
        "Read-only. A relative path is looked up in the shared folders.",
        {
            "type": "object",
            "properties": {"path": {"type": "string", "minLength": 1, "maxLength": 4096}},
            "required": ["path"],
            "additionalProperties": False,
        },
        BUILTIN,
        destructive_hint=False,
    ),
)


def _calculator(args: dict[str, Any]) -> str:
    expression = args["expression"]
    return f"{expression} = {format_number(evaluate(expression))}"


def _now(_args: dict[str, Any]) -> str:
    now = datetime.now().astimezone()
    return now.strftime("%A %d %B %Y, %H:%M:%S ") + f"{now.tzname()} (UTC{now:%z})"


class BuiltinTools:
    """The built-in tool source. ``store`` (a Store) backs search_chats and read_file."""

    name = BUILTIN

    def __init__(self, store: Any) -> None:
        self._store = store
        self._folders = GrantedFolders(store)
        self._handlers: dict[str, Callable[[dict[str, Any]], str]] = {
            "calculator": _calculator,
            "current_datetime": _now,
            "search_chats": self._search,
            "read_file": self._read,
        }

    def list_tools(self) -> list[Tool]:
        return list(_TOOLS)

    def call(self, name: str, arguments: dict[str, Any], timeout_s: float) -> ToolResult:
        handler = self._handlers.get(name)
        if handler is None:
            return ToolResult.error(f"unknown tool {name!r}")
        try:
            return ToolResult(handler(arguments))
        except (CalcError, FileAccessError) as exc:
            return ToolResult.error(str(exc))

    def _search(self, args: dict[str, Any]) -> str:
        query = args["query"]
        hits = self._store.search_messages(
            query, args.get("limit", 5), marks=("", "")
        )
        if not hits:
            return f"No messages in saved chats match {query!r}."
        lines = []
        for hit in hits:
            title = hit.chat_title[:_TITLE_CHARS]
            lines.append(f'- chat "{title}" (id {hit.chat_id}), {hit.role}: {hit.snippet}')
        return f"{len(hits)} matching messages:\n" + "\n".join(lines)

    def _read(self, args: dict[str, Any]) -> str:
        return read_granted(args["path"], self._folders.list())
