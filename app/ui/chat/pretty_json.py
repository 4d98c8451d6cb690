"""A structured-output reply shown indented: JSON text → a ```json Markdown code block.

The reply is the model's, so the work is bounded: only short replies are parsed, and only
shallow values are indented (indentation grows with depth, so a deeply nested reply would grow
many times over when indented). Anything else is shown as the model wrote it.
"""

from __future__ import annotations

import json
from typing import Any

from app.ui.markdown_html import MARKDOWN_LIMIT

REPLY_LIMIT = 20_000  # characters of a reply worth parsing
MAX_DEPTH = 32  # nesting levels worth indenting


def json_block(text: str) -> str | None:
    """A JSON object or array reply as an indented ```json code block, or None when the text
    is not one (a reply cut short, say) or is too big or deep to indent."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "{[" or len(stripped) > REPLY_LIMIT:
        return None
    try:
        value = json.loads(stripped)
        if _depth(value) > MAX_DEPTH:
            return None
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None
    if len(pretty) > MARKDOWN_LIMIT:
        return None
    # No line of indented JSON starts with a backtick, so nothing inside can close the fence.
    return "```json\n" + pretty + "\n```"


def _depth(value: Any) -> int:
    """How deeply containers nest in a parsed JSON value (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                stack.extend((child, depth + 1) for child in node)
    return deepest
