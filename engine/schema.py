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
from datetime import datetime, timezone
from typing import Any, Callable

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


def parse_time(value: Any) -> float | None:
    """ISO-8601 to epoch seconds, None for anything else (any JSON value may come in: compiled,
    a ``str`` parameter would raise TypeError at the call); a time without an offset is taken
    as UTC."""
    if not isinstance(value, str):
        return None
    try:
        return instant(value)
    except ValueError:
        return None


def instant(value: str) -> float:
    """Epoch seconds of an ISO-8601 time known to be valid (its schema said ``date-time``);
    a time without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _pattern_test(pattern: str) -> Callable[[str], bool]:
    """ECMA-style: an anchored ``^...$`` pattern matches the whole string (Python's ``$``
    would also accept a trailing newline)."""
    if pattern.startswith("^") and pattern.endswith("$"):
        whole = re.compile(pattern[1:-1]).fullmatch
        return lambda value: whole(value) is not None
    anywhere = re.compile(pattern).search
    return lambda value: anywhere(value) is not None


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
        if "pattern" in schema and not _pattern_test(schema["pattern"])(value):
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


def compile_validator(schema: dict) -> Callable[[Any], bool]:
    """A predicate that answers what ``not check(schema, value)`` answers, without building
    paths or problems: the hot path (every event a worker reads) only needs the yes; a no is
    followed by ``check`` for the full list of problems. Built once per schema, as closures
    specialised to the schema's one declared type when it has one (every field of an event
    does), with plain loops: a generic closure with ``all(...)`` generators cost about 1 µs
    per field."""
    expected = schema.get("type")
    types = [] if expected is None else expected if isinstance(expected, list) else [expected]
    number = _number_tests(schema)
    string = _string_tests(schema)
    array = _array_test(schema)
    obj = _object_test(schema)
    if len(types) == 1 and "const" not in schema and "enum" not in schema:
        only = types[0]
        if only == "string":
            return _all_of(str, string)
        if only == "object":
            return _all_of(dict, [] if obj is None else [obj])
        if only == "array":
            return _all_of(list, [] if array is None else [array])
        if only == "number":
            return _number(number, integer=False)
        if only == "integer":
            return _number(number, integer=True)
    type_tests = [_TYPES[t] for t in types]
    const, has_const = schema.get("const"), "const" in schema
    enum: Any = schema.get("enum")
    has_enum = "enum" in schema

    def valid(value: Any) -> bool:
        if type_tests:
            for test in type_tests:
                if test(value):
                    break
            else:
                return False
        if has_const and value != const:
            return False
        if has_enum and value not in enum:
            return False
        if value is None:
            return True
        if isinstance(value, str):
            tests = string
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            tests = number
        elif isinstance(value, dict):
            return obj is None or obj(value)
        elif isinstance(value, list):
            return array is None or array(value)
        else:
            return True
        return _passes(tests, value)
    return valid


def _all_of(kind: type, tests: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """A value of ``kind`` (or a subclass) passing every test."""
    if not tests:
        return lambda value: isinstance(value, kind)
    if len(tests) == 1:
        test = tests[0]
        return lambda value: isinstance(value, kind) and test(value)
    return lambda value: isinstance(value, kind) and _passes(tests, value)


def _number(tests: list[Callable[[Any], bool]], integer: bool) -> Callable[[Any], bool]:
    """A number (never a bool) passing every test; ``integer`` accepts integral floats too."""
    def valid(value: Any) -> bool:
        kind = type(value)
        if kind is not int and kind is not float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False
        if integer and isinstance(value, float) and not value.is_integer():
            return False
        return _passes(tests, value)
    return valid


def _number_tests(schema: dict) -> list[Callable[[Any], bool]]:
    tests: list[Callable[[Any], bool]] = []
    if "minimum" in schema:
        low = schema["minimum"]
        tests.append(lambda v: v >= low)
    if "exclusiveMinimum" in schema:
        above = schema["exclusiveMinimum"]
        tests.append(lambda v: v > above)
    if "maximum" in schema:
        high = schema["maximum"]
        tests.append(lambda v: v <= high)
    return tests


def _string_tests(schema: dict) -> list[Callable[[Any], bool]]:
    tests: list[Callable[[Any], bool]] = []
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    if longest is not None:
        tests.append(lambda v: shortest <= len(v) <= longest)
    elif shortest:
        tests.append(lambda v: len(v) >= shortest)
    if "pattern" in schema:
        tests.append(_pattern_test(schema["pattern"]))
    if schema.get("format") == "date-time":
        tests.append(lambda v: parse_time(v) is not None)
    return tests


def _array_test(schema: dict) -> Callable[[list], bool] | None:
    fewest, most = schema.get("minItems", 0), schema.get("maxItems")
    item = compile_validator(schema["items"]) if "items" in schema else None
    if not fewest and most is None and item is None:
        return None

    def test(value: list) -> bool:
        if len(value) < fewest or (most is not None and len(value) > most):
            return False
        if item is not None:
            for element in value:
                if not item(element):
                    return False
        return True
    return test


def _passes(tests: list[Callable[[Any], bool]], value: Any) -> bool:
    """Every test holds (a loop: an ``all(...)`` generator costs a frame per call)."""
    for test in tests:
        if not test(value):
            return False
    return True


def _object_test(schema: dict) -> Callable[[dict], bool] | None:
    fewest, most = schema.get("minProperties", 0), schema.get("maxProperties")
    properties = {name: compile_validator(sub)
                  for name, sub in schema.get("properties", {}).items()}
    required = tuple(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)
    extra_test = compile_validator(extra) if isinstance(extra, dict) else None
    branches: dict[Any, Callable[[dict], bool]] = {}
    discriminator = schema.get("x-discriminator") if "oneOf" in schema else None
    if discriminator is not None:
        for branch in reversed(schema["oneOf"]):  # the first branch with a tag wins, as in check
            branches[branch["properties"][discriminator]["const"]] = compile_validator(branch)

    def test(value: dict) -> bool:
        if len(value) < fewest or (most is not None and len(value) > most):
            return False
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            prop = properties.get(name)
            if prop is not None:
                if not prop(item):
                    return False
            elif extra is False:
                return False
            elif extra_test is not None and not extra_test(item):
                return False
        if discriminator is not None:
            tag = value.get(discriminator)
            try:
                branch = branches.get(tag)
            except TypeError:  # an unhashable tag matches no branch
                branch = None
            if branch is not None and not branch(value):
                return False
        return True
    return test


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
