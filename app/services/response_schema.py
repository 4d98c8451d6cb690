"""A chat's response schema (structured output, issue 12): is what the user typed usable, and
if not, why — in words a person can act on, for the window's schema editor.

Three checks, cheapest first: the text is JSON (errors say line and column), it is a valid JSON
Schema (checked against its meta-schema by `jsonschema`), and the grammar converter can enforce
every keyword in it (`UnsupportedSchema` lists the ones it cannot). The text is the user's or
an imported chat's, so it is bounded before any parser sees it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import SchemaError
from jsonschema.validators import Draft202012Validator, validator_for

from app.engine.structured.schema_grammar import UnsupportedSchema, schema_to_grammar

MAX_SCHEMA_CHARS = 100_000  # far beyond any hand-written schema; bounds every parser below
EMPTY_MESSAGE = "Write a JSON schema (an object such as {\"type\": \"object\"}) to use it."


@dataclass(frozen=True)
class SchemaCheck:
    """The verdict on a schema text: `schema` is set only when it can be used."""

    schema: dict[str, Any] | None
    message: str  # plain text: why it cannot be used, or what it is when it can

    @property
    def ok(self) -> bool:
        return self.schema is not None


def parse_schema_text(text: str | None) -> SchemaCheck:
    """Only the JSON checks (fast enough for any thread): the text is a JSON object."""
    if text is None or not text.strip():
        return SchemaCheck(None, EMPTY_MESSAGE)
    if len(text) > MAX_SCHEMA_CHARS:
        return SchemaCheck(None, f"The schema is too long ({len(text):,} characters; "
                                 f"at most {MAX_SCHEMA_CHARS:,}).")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return SchemaCheck(None, f"JSON error at line {exc.lineno}, column {exc.colno}: "
                                 f"{exc.msg}.")
    except RecursionError:
        return SchemaCheck(None, "The schema is nested too deeply.")
    if not isinstance(value, dict):
        return SchemaCheck(None, "A response schema must be a JSON object ({…}), "
                                 f"not {type(value).__name__ if value is not None else 'null'}.")
    return SchemaCheck(value, "")


def check_schema_text(text: str | None) -> SchemaCheck:
    """All three checks; may take a while on a huge schema, so the window runs it off the GUI
    thread."""
    parsed = parse_schema_text(text)
    if parsed.schema is None:
        return parsed
    schema = parsed.schema
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(part) for part in exc.path)
        place = f" at {where}" if where else ""
        return SchemaCheck(None, f"Not a valid JSON Schema{place}: {_shorten(exc.message)}")
    except RecursionError:
        return SchemaCheck(None, "The schema is nested too deeply.")
    try:
        schema_to_grammar(schema)
    except UnsupportedSchema as exc:
        reasons = getattr(exc, "reasons", None) or [""] * len(exc.features)
        listed = "; ".join(f"{feature} ({reason})" if reason else feature
                           for feature, reason in zip(exc.features, reasons, strict=False))
        return SchemaCheck(None, f"Structured output cannot enforce: {_shorten(listed)}")
    except ValueError as exc:
        return SchemaCheck(None, f"Structured output cannot use this schema: {_shorten(str(exc))}")
    return SchemaCheck(schema, "Valid schema.")


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
