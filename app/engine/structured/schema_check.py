"""Before conversion: bound an untrusted schema's size, and list every keyword the converter
would drop.

llama-cpp-python's converter (a port of llama.cpp's json-schema-to-grammar) picks ONE branch
per schema node: a ``$ref``, a union, a constant, an object, an array, a string form or a
primitive, and silently ignores every other keyword there. This walk mirrors that choice, so a
keyword the grammar would not enforce is reported instead of dropped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from app.engine.structured.pattern_check import MAX_REPEAT, pattern_problem  # {m,n} and *Items
from app.engine.structured.schema_errors import (
    InvalidSchema,
    SchemaTooComplex,
    UnsupportedSchema,
)

MAX_SCHEMA_BYTES = 64 * 1024
MAX_NESTING = 48  # JSON nesting of the schema document
MAX_NODES = 8000  # JSON values in the schema document
MAX_INT_BOUND = 10**15  # integer bounds the range rule spells digit by digit
MAX_PROPERTIES = 256  # per object: the converter's optional-property rules grow as n²
MAX_ALTERNATIVES = 512  # enum values or anyOf branches: llama.cpp tracks one stack per branch

ANNOTATIONS = frozenset({
    "title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
    "writeOnly", "$schema", "$id", "$anchor", "contentEncoding", "contentMediaType",
    "contentSchema"})
CONTAINERS = frozenset({"$defs", "definitions"})
ANY_KW = frozenset({"type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then",
                    "else", "$ref", "$dynamicRef", "$recursiveRef"})
FAMILIES = {
    "string": frozenset({"minLength", "maxLength", "pattern", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                         "multipleOf"}),
    "array": frozenset({"items", "prefixItems", "additionalItems", "minItems", "maxItems",
                        "uniqueItems", "contains", "minContains", "maxContains",
                        "unevaluatedItems"}),
    "object": frozenset({"properties", "required", "additionalProperties", "patternProperties",
                         "propertyNames", "minProperties", "maxProperties", "dependentRequired",
                         "dependentSchemas", "dependencies", "unevaluatedProperties"}),
}
FAMILIES["integer"] = FAMILIES["number"]
INT_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
PRIMITIVES = frozenset({"boolean", "number", "integer", "string", "null", "array", "object"})
FORMATS = frozenset({"date", "time", "date-time"})
# Characters a JSON string can't hold raw; the converter writes literals without escaping them.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f]')


@dataclass
class _Walk:
    root: dict[str, Any]
    features: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def flag(self, path: str, keyword: str, reason: str = "") -> None:
        self.features.append(f"{path}.{keyword}" if path else keyword)
        self.reasons.append(reason)


def check_bounds(schema: Any) -> None:
    """Refuse what is not a JSON object, or too big, deep or wide to convert quickly."""
    if not isinstance(schema, dict):
        raise InvalidSchema("A JSON schema must be a JSON object.")
    nodes, stack = 0, [(schema, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if depth > MAX_NESTING:
            raise SchemaTooComplex(f"The schema is nested more than {MAX_NESTING} levels deep.")
        if nodes > MAX_NODES:
            raise SchemaTooComplex(f"The schema has more than {MAX_NODES} values.")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    size = len(json.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaTooComplex(f"The schema is {size} bytes; the limit is {MAX_SCHEMA_BYTES}.")


def find_unsupported(schema: dict[str, Any]) -> None:
    """Raise `UnsupportedSchema` listing every keyword the grammar would not enforce."""
    walk = _Walk(schema)
    _node(walk, schema, "")
    if walk.features:
        raise UnsupportedSchema(walk.features, walk.reasons)


def resolve_ref(root: dict[str, Any], ref: str) -> Any:
    """A local ``#/a/b`` pointer's target; `InvalidSchema` if it points nowhere."""
    target: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(target, dict) or part not in target:
            raise InvalidSchema(f"The $ref {ref[:80]!r} points to nothing in the schema.")
        target = target[part]
    if not isinstance(target, dict):
        raise InvalidSchema(f"The $ref {ref[:80]!r} does not point to a schema.")
    return target


def _join(path: str, *parts: object) -> str:
    return ".".join([path, *map(str, parts)] if path else list(map(str, parts)))


def _node(walk: _Walk, s: Any, path: str) -> None:
    if isinstance(s, bool):
        walk.flag(path, str(s).lower(), "a boolean schema; write an object schema")
        return
    if not isinstance(s, dict):
        return
    for key in CONTAINERS & s.keys():
        if isinstance(s[key], dict):
            for name, sub in s[key].items():
                _node(walk, sub, _join(path, key, name))
    honoured, out = _branch(walk, s, path)
    for key in s:
        if key in honoured or key in ANNOTATIONS or key in CONTAINERS:
            continue
        if key in ANY_KW or (out is None and any(key in f for f in FAMILIES.values())) \
                or key in FAMILIES.get(out or "", ()):
            walk.flag(path, key, _why(key))


def _why(key: str) -> str:
    return {"oneOf": "exclusive choice; anyOf is supported",
            "uniqueItems": "unique items", "multipleOf": "multiples",
            "format": "only date, time, date-time and uuid formats",
            **dict.fromkeys(INT_BOUNDS, "bounds only on integers")}.get(key, "")


def _branch(walk: _Walk, s: dict[str, Any], path: str) -> tuple[set[str], str | None]:
    """The keywords the converter honours at ``s`` and the JSON type it outputs (None: any)."""
    kind = s.get("type")
    if "$ref" in s:
        ref = s["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or "~" in ref or "%" in ref:
            walk.flag(path, "$ref", "only local #/... references")
        else:
            resolve_ref(walk.root, ref)
        return {"$ref"}, None
    if "anyOf" in s or "oneOf" in s:
        if "anyOf" in s and "oneOf" not in s:
            _alternatives(path, "anyOf", s["anyOf"])
            for i, alt in enumerate(s["anyOf"] or []):
                _node(walk, alt, _join(path, "anyOf", i))
            return {"anyOf"}, None
        return set(), None
    if isinstance(kind, list):
        return {"type"}, None
    if "const" in s or "enum" in s:
        _constants(walk, s, path)
        return set(s), None  # every value checked against the whole node: nothing is dropped
    if kind in (None, "object") and ("properties" in s or (
            "additionalProperties" in s and s["additionalProperties"] is not True)):
        return _object(walk, s, path), "object"
    if kind in (None, "object") and "allOf" in s:
        _all_of(walk, s, path)
        return {"type", "allOf"}, "object"
    if kind in (None, "array") and ("items" in s or "prefixItems" in s):
        return _array(walk, s, path), "array"
    if kind in (None, "string") and "pattern" in s:
        reason = pattern_problem(s["pattern"], _join(path, "pattern"))
        if reason:
            walk.flag(path, "pattern", reason)
        return {"type", "pattern"}, "string"
    fmt = s.get("format")
    if kind in (None, "string") and isinstance(fmt, str) and (
            fmt in FORMATS or re.match(r"^uuid[1-5]?$", fmt)):
        return {"type", "format"}, "string"
    if kind == "string" and ("minLength" in s or "maxLength" in s):
        _repeat(walk, s, path, "minLength", "maxLength")
        return {"type", "minLength", "maxLength"}, "string"
    if kind == "object" or not (s.keys() - ANNOTATIONS - CONTAINERS):
        return {"type"}, "object"
    if kind == "integer":
        _int_bounds(walk, s, path)
        return {"type", *INT_BOUNDS}, "integer"
    if kind in PRIMITIVES:
        return {"type"}, kind
    if kind is not None:
        walk.flag(path, "type", f"unknown type {str(kind)[:40]!r}")
        return {"type"}, None
    return set(), None


def _constants(walk: _Walk, s: dict[str, Any], path: str) -> None:
    from jsonschema import validators

    values = [s["const"]] if "const" in s else s["enum"]
    keyword = "const" if "const" in s else "enum"
    _alternatives(path, keyword, values)
    if not isinstance(values, list) or not values:
        walk.flag(path, keyword, "no value allowed")
        return
    cls = validators.validator_for(walk.root)
    checker = cls(walk.root).evolve(schema=s)
    for value in values:
        if any(_NEEDS_ESCAPE.search(t) for t in _strings(value)):
            walk.flag(path, keyword, "a value with quotes, backslashes or control characters")
            return
        try:
            valid = checker.is_valid(value)
        except Exception:  # noqa: BLE001 - e.g. a $ref beside it that resolves nowhere
            valid = False
        if not valid:
            walk.flag(path, keyword, "a value this node's other keywords refuse")
            return


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in [k, *_strings(v)]]
    if isinstance(value, list):
        return [t for v in value for t in _strings(v)]
    return []


def _alternatives(path: str, keyword: str, values: Any) -> None:
    if isinstance(values, list) and len(values) > MAX_ALTERNATIVES:
        raise SchemaTooComplex(f"{_join(path, keyword)} has {len(values)} alternatives; "
                               f"Hearth's limit is {MAX_ALTERNATIVES}.")


def _object(walk: _Walk, s: dict[str, Any], path: str) -> set[str]:
    props = s.get("properties") or {}
    if len(props) > MAX_PROPERTIES:
        raise SchemaTooComplex(f"{path or 'The schema'} has {len(props)} properties; Hearth's "
                               f"limit is {MAX_PROPERTIES} per object.")
    for name, sub in props.items():
        if _NEEDS_ESCAPE.search(name):
            walk.flag(path, "properties", "a name with quotes, backslashes or control characters")
        _node(walk, sub, _join(path, "properties", name))
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        _node(walk, extra, _join(path, "additionalProperties"))
    for name in s.get("required") or []:
        if name not in props:
            walk.flag(path, "required", f"{str(name)[:40]!r} is not among the properties")
    honoured = {"type", "properties", "required", "additionalProperties"}
    if s.get("unevaluatedProperties") is False:
        honoured.add("unevaluatedProperties")  # only listed properties are ever written
    return honoured


def _all_of(walk: _Walk, s: dict[str, Any], path: str) -> None:
    allowed = {"properties", "required", "type"} | ANNOTATIONS
    for i, part in enumerate(s["allOf"]):
        where = _join(path, "allOf", i)
        if isinstance(part, dict) and isinstance(part.get("$ref"), str) \
                and part["$ref"].startswith("#/") and not (part.keys() - {"$ref"} - ANNOTATIONS):
            target, where = resolve_ref(walk.root, part["$ref"]), where + ".$ref"
        else:
            target = part
        if not isinstance(target, dict):
            walk.flag(where, "allOf", "not a schema object")
            continue
        for key in sorted(target.keys() - allowed):
            walk.flag(where, key, "inside allOf only properties are merged")
        if target.get("type", "object") != "object":
            walk.flag(where, "type", "allOf parts must be objects")
        for name, sub in (target.get("properties") or {}).items():
            _node(walk, sub, _join(where, "properties", name))


def _array(walk: _Walk, s: dict[str, Any], path: str) -> set[str]:
    items, prefix = s.get("items"), s.get("prefixItems")
    honoured = {"type", "items", "minItems", "maxItems"}
    if items:
        if prefix is not None:
            walk.flag(path, "prefixItems", "prefixItems beside items")
        tuple_items = items if isinstance(items, list) else None
    elif prefix:
        honoured.add("prefixItems")
        tuple_items = prefix
    else:
        walk.flag(path, "items", "an empty or false items schema")
        return honoured
    if tuple_items is None:
        _node(walk, items, _join(path, "items"))
        _repeat(walk, s, path, "minItems", "maxItems")
        return honoured
    for i, sub in enumerate(tuple_items):
        _node(walk, sub, _join(path, "prefixItems" if tuple_items is prefix else "items", i))
    n = len(tuple_items)
    if not s.get("minItems", 0) <= n <= s.get("maxItems", n):
        walk.flag(path, "minItems" if n < s.get("minItems", 0) else "maxItems",
                  "the fixed tuple length is outside the limits")
    if s.get("additionalItems", False) is False:
        honoured.add("additionalItems")  # the tuple is written exactly
    return honoured


def _repeat(walk: _Walk, s: dict[str, Any], path: str, low: str, high: str) -> None:
    for key in (low, high):
        value = s.get(key)
        if value is not None and (not isinstance(value, int) or value > MAX_REPEAT):
            raise SchemaTooComplex(f"{_join(path, key)} is {str(value)[:20]}; Hearth's limit for "
                                   f"a repetition is {MAX_REPEAT}.")
    if s.get(high) is not None and s.get(low, 0) > s[high]:
        raise InvalidSchema(f"{_join(path, low)} is more than {high}: nothing can match.")


def _int_bounds(walk: _Walk, s: dict[str, Any], path: str) -> None:
    for key in INT_BOUNDS:
        value = s.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or abs(value) > MAX_INT_BOUND:
            walk.flag(path, key, f"integer bounds up to {MAX_INT_BOUND:.0e}")
    low, high = int_limits(s)
    if low is not None and high is not None and low > high:
        raise InvalidSchema(f"{path or 'The schema'}: no integer lies between the bounds.")


def int_limits(s: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive integer range a node's numeric bounds leave."""
    lows, highs = [], []
    if isinstance(s.get("minimum"), int | float):
        lows.append(math.ceil(s["minimum"]))
    if isinstance(s.get("exclusiveMinimum"), int | float):
        lows.append(math.floor(s["exclusiveMinimum"]) + 1)
    if isinstance(s.get("maximum"), int | float):
        highs.append(math.floor(s["maximum"]))
    if isinstance(s.get("exclusiveMaximum"), int | float):
        highs.append(math.ceil(s["exclusiveMaximum"]) - 1)
    return (max(lows) if lows else None), (min(highs) if highs else None)
