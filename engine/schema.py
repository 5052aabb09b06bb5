"""A small JSON-Schema interpreter: the one place where input shapes are declared.

Events and configuration objects are declared as JSON Schema fragments (plain dicts); this
module checks a value against them and lists *every* problem with its path
(``data.items[2].qty``), and the same dicts are served in ``/openapi.json``. So the document
and the validator cannot drift apart.

Supported keywords: ``type`` (name or list), ``enum``, ``const``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``minLength``, ``maxLength``, ``pattern``, ``minProperties``,
``maxProperties``, ``minItems``, ``maxItems``, ``items``,
``properties``, ``required``, ``additionalProperties`` (bool or schema), ``format:
date-time``, and ``oneOf`` whose branches are told apart by a ``const`` on a discriminator
property (``x-discriminator``: which property).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

Problem = dict[str, str]

_TYPES = {
    "string": lambda v: isinstance(v, str),
    # JSON Schema counts 3.0 as an integer; callers convert with int().
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parse_time(value: str) -> float | None:
    """ISO-8601 to epoch seconds; a time without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        from datetime import timezone
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _matches(pattern: str, value: str) -> bool:
    """ECMA-style: an anchored ``^...$`` pattern matches the whole string (Python's ``$``
    would also accept a trailing newline)."""
    if pattern.startswith("^") and pattern.endswith("$"):
        return re.fullmatch(pattern[1:-1], value) is not None
    return re.search(pattern, value) is not None


def check(schema: dict, value: Any, path: str = "") -> list[Problem]:
    """Every problem of ``value`` against ``schema``, each ``{"field", "problem"}``."""
    problems: list[Problem] = []
    _check(schema, value, path, problems)
    return problems


def _describe(types: list[str]) -> str:
    names = {"string": "a string", "integer": "an integer", "number": "a number",
             "boolean": "true or false", "object": "an object", "array": "a list",
             "null": "null"}
    return " or ".join(names[t] for t in types)


def _check(schema: dict, value: Any, path: str, problems: list[Problem]) -> None:
    where = path or "(body)"
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_TYPES[t](value) for t in types):
            problems.append({"field": where, "problem": f"must be {_describe(types)}"})
            return
    if "const" in schema and value != schema["const"]:
        problems.append({"field": where, "problem": f"must be {schema['const']!r}"})
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        problems.append({"field": where, "problem": f"must be one of: {allowed}"})
        return
    if value is None:
        return
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append({"field": where, "problem": f"must be >= {schema['minimum']}"})
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append({"field": where,
                             "problem": f"must be > {schema['exclusiveMinimum']}"})
        if "maximum" in schema and value > schema["maximum"]:
            problems.append({"field": where, "problem": f"must be <= {schema['maximum']}"})
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append({"field": where, "problem": "must not be empty"
                             if schema["minLength"] == 1
                             else f"must have at least {schema['minLength']} characters"})
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append({"field": where,
                             "problem": f"must have at most {schema['maxLength']} characters"})
        if "pattern" in schema and not _matches(schema["pattern"], value):
            problems.append({"field": where, "problem": schema.get(
                "x-pattern-problem", f"must match {schema['pattern']}")})
        if schema.get("format") == "date-time" and parse_time(value) is None:
            problems.append({"field": where, "problem": "must be an ISO-8601 date-time"})
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append({"field": where,
                             "problem": f"must have at least {schema['minItems']} items"})
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append({"field": where,
                             "problem": f"must have at most {schema['maxItems']} items"})
        if "items" in schema:
            for index, item in enumerate(value):
                _check(schema["items"], item, join(path, index), problems)
    if isinstance(value, dict):
        if len(value) < schema.get("minProperties", 0) or len(value) > schema.get(
                "maxProperties", len(value)):
            problems.append({"field": where, "problem": schema.get(
                "x-count-problem", "has the wrong number of fields")})
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            if name not in value:
                problems.append({"field": join(path, name), "problem": "is required"})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                _check(properties[name], item, join(path, name), problems)
            elif extra is False:
                problems.append({"field": join(path, name), "problem": "is not a known field"})
            elif isinstance(extra, dict):
                _check(extra, item, join(path, name), problems)
        if "oneOf" in schema and "x-discriminator" in schema:
            _check_branch(schema, value, path, problems)


def _check_branch(schema: dict, value: dict, path: str, problems: list[Problem]) -> None:
    key = schema["x-discriminator"]
    tag = value.get(key)  # an unknown tag was already reported by the enum on ``key``
    for branch in schema["oneOf"]:
        if branch["properties"][key]["const"] == tag:
            _check(branch, value, path, problems)
            return


def tagged_union(key: str, branches: dict[str, dict]) -> dict:
    """A ``oneOf`` of object schemas told apart by ``key`` (e.g. a trigger's ``type``)."""
    one_of = []
    for tag, branch in branches.items():
        properties = {key: {"const": tag}, **branch.get("properties", {})}
        one_of.append({**branch, "type": "object", "properties": properties,
                       "required": [key, *branch.get("required", ())]})
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "string", "enum": list(branches)}},
            "x-discriminator": key, "oneOf": one_of}
