"""JSON schema → GBNF grammar, with llama-cpp-python's own converter (a port of llama.cpp's
json-schema-to-grammar), after checking the schema so no keyword is silently dropped.

Schemas come from API requests and users' editors: untrusted. Their size, nesting and
repetition counts are bounded before conversion, so the converter's time and the grammar's size
(llama.cpp walks it at every sampled token) stay small.
"""

from __future__ import annotations

import copy
from typing import Any

from llama_cpp.llama_grammar import SchemaConverter

from app.engine.structured.int_range import int_range_rule
from app.engine.structured.schema_check import (
    ANNOTATIONS,
    check_bounds,
    find_unsupported,
    int_limits,
)
from app.engine.structured.schema_errors import (
    InvalidSchema,
    SchemaTooComplex,
    UnsupportedSchema,
)

__all__ = ["JSON_OBJECT_GRAMMAR", "InvalidSchema", "SchemaTooComplex", "UnsupportedSchema",
           "schema_to_grammar"]

MAX_GRAMMAR_CHARS = 512 * 1024

# The converter's own rules let a JSON string hold raw control characters (json.loads refuses
# them) and let a pattern's "." write a quote or backslash; these are llama.cpp's current ones.
_CHAR = (r'[^"\\\x7F\x00-\x1F] | [\\] (["\\bfnrt] | '
         r'"u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])')
_DOT = r'[^"\\\x7F\x00-\x1F]'
# llama.cpp's current whitespace: a model that writes JSON pretty-printed (most do) keeps its
# newlines and indents, instead of being refused at every line break (a slow resample each).
_SPACE = r'| " " | "\n" [ \t]{0,20} | "\n" "\n" [ \t]{0,20}'

_SUBSCHEMA = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
              "propertyNames", "unevaluatedItems", "unevaluatedProperties", "additionalItems")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems", "items")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")


def _json_object_grammar() -> str:
    converter = _Converter()
    converter.visit({"type": "object"}, "")
    return converter.format_grammar()


class _Converter(SchemaConverter):
    def __init__(self) -> None:
        super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        self._rules["space"] = _SPACE

    def _add_rule(self, name: str, rule: str) -> str:
        if name == "char":
            rule = _CHAR
        elif name == "dot":
            rule = _DOT
        return super()._add_rule(name, rule)

    def visit(self, schema: dict[str, Any], name: str) -> str:
        if schema.get("type") == "integer" and any(
                k in schema for k in ("minimum", "maximum", "exclusiveMinimum",
                                      "exclusiveMaximum")):
            low, high = int_limits(schema)
            rule_name = name or "root"
            return self._add_rule(rule_name, f"({int_range_rule(low, high)}) space")
        return super().visit(schema, name)


JSON_OBJECT_GRAMMAR: str = _json_object_grammar()


def schema_to_grammar(schema: dict[str, Any]) -> str:
    """GBNF text (root rule ``root``) whose every match validates against ``schema``.

    Raises `UnsupportedSchema` (with ``.features``) for keywords it could not enforce,
    `SchemaTooComplex` over the limits, `InvalidSchema` for a malformed schema.
    """
    check_bounds(schema)
    _check_meta(schema)
    find_unsupported(schema)
    cleaned = _clean(copy.deepcopy(schema))
    converter = _Converter()
    try:
        resolved = converter.resolve_refs(cleaned, "")
        converter.visit(resolved, "")
        grammar = converter.format_grammar()
    except (AssertionError, KeyError, ValueError, TypeError, AttributeError,
            RecursionError) as exc:
        raise InvalidSchema(f"The schema could not be converted to a grammar: "
                            f"{str(exc)[:200]}") from exc
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise SchemaTooComplex(f"The schema's grammar would be {len(grammar)} characters; the "
                               f"limit is {MAX_GRAMMAR_CHARS}.")
    return grammar


def _check_meta(schema: dict[str, Any]) -> None:
    from jsonschema import exceptions, validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = ".".join(map(str, exc.path)) or "the schema"
        raise InvalidSchema(f"Not a valid JSON schema at {where}: {exc.message[:200]}") from exc


def _clean(node: Any) -> Any:
    """Drop annotations at schema positions: the converter reads a node holding only a title
    or description as an unknown schema (for it, an empty schema is any object)."""
    if not isinstance(node, dict):
        return node
    for key in ANNOTATIONS & node.keys():
        del node[key]
    for key in _SUBSCHEMA:
        if isinstance(node.get(key), dict):
            _clean(node[key])
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            for sub in node[key]:
                _clean(sub)
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                _clean(sub)
    return node
