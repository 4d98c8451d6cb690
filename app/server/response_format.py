"""OpenAI's ``response_format`` → the grammar a reply must match (or None for plain text)."""

from __future__ import annotations

from typing import Any

from app.engine.structured.schema_grammar import (
    JSON_OBJECT_GRAMMAR,
    InvalidSchema,
    UnsupportedSchema,
    schema_to_grammar,
)
from app.server.errors import ApiError, invalid

SCHEMA_PARAM = "response_format.json_schema.schema"


def response_grammar(response_format: dict[str, Any] | None) -> str | None:
    """``{type: text}``, ``{type: json_object}`` or ``{type: json_schema, json_schema: {name,
    schema, strict}}``; a 400 naming the field for anything else or any schema it can't honour."""
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT_GRAMMAR
    if kind != "json_schema":
        raise invalid("response_format.type", f"Invalid 'response_format.type': "
                      f"{str(kind)[:40]!r}; use 'text', 'json_object' or 'json_schema'.")
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise invalid("response_format.json_schema", "Missing required parameter: "
                      "'response_format.json_schema' (an object with 'name' and 'schema').",
                      "missing_required_parameter")
    schema = spec.get("schema")
    if schema is None:
        # OpenAI requires it; LM Studio and llama-server read a missing schema as any object.
        return JSON_OBJECT_GRAMMAR
    try:
        return schema_to_grammar(schema)
    except UnsupportedSchema as exc:
        raise ApiError(400, f"Invalid '{SCHEMA_PARAM}': {exc}", param=SCHEMA_PARAM,
                       code="unsupported_schema") from exc
    except InvalidSchema as exc:
        raise invalid(SCHEMA_PARAM, f"Invalid '{SCHEMA_PARAM}': {exc}",
                      "invalid_schema") from exc
