""""Always allow this tool", remembered per tool (its source and its name there) in settings."""

from __future__ import annotations

from typing import Any

from app.services.tools.values import Tool

ALWAYS_ALLOWED_KEY = "tools.always_allowed"


class ToolPermissions:
    """Which tools run without asking; every other call waits for the user's Allow or Deny."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def _allowed(self) -> list[list[str]]:
        value = self._store.get_setting(ALWAYS_ALLOWED_KEY, [])
        if not isinstance(value, list):
            return []
        return [
            list(item) for item in value
            if isinstance(item, list) and len(item) == 2 and all(isinstance(p, str) for p in item)
        ]

    def is_always_allowed(self, tool: Tool) -> bool:
        return list(tool.key) in self._allowed()

    def always_allow(self, tool: Tool) -> None:
        allowed = self._allowed()
        if list(tool.key) not in allowed:
            self._store.set_setting(ALWAYS_ALLOWED_KEY, [*allowed, list(tool.key)])

    def revoke(self, tool: Tool) -> bool:
        allowed = self._allowed()
        kept = [item for item in allowed if item != list(tool.key)]
        if len(kept) == len(allowed):
            return False
        self._store.set_setting(ALWAYS_ALLOWED_KEY, kept)
        return True

    def always_allowed(self) -> list[tuple[str, str]]:
        """(source, tool name) pairs, for a settings page that lists and revokes them."""
        return [(source, name) for source, name in self._allowed()]
