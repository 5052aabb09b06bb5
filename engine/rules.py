"""The segment rule language, interpreted (never ``eval``): ``{"all": [...]}``,
``{"any": [...]}``, ``{"not": rule}`` and conditions ``{"field", "op", "value"}``.

A rule is validated when it is defined (every bad path named, e.g. ``rule.all[1].op``) and
compiled into nested closures ``predicate(state, at)`` that read each field straight from the
member state (engine/state.py ``reader``) at the event's time. Compiling also reports which
fields the rule reads, so the program can index segments by field and evaluate only those an
event could have changed.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Callable

from engine.schema import Problem, join
from engine.state import ATTRIBUTES, MemberState, reader

#: Fields a condition may read; ``tags.``, ``profile.`` and ``consents.`` take a name.
NUMERIC_FIELDS = frozenset({"balance", "spend_total", "spend_30d", "spend_365d",
                            "purchases_total", "visits_30d", "days_since_activity", "streak",
                            "pending", "points_earned_total", "points_earned_365d"})
PLAIN_FIELDS = NUMERIC_FIELDS | {"tier", "brand", "status"}
PREFIXED_FIELDS = ("tags.", "profile.", "consents.")
#: Facts that change with the passing of time alone (re-evaluated on every event).
TIME_DEPENDENT = frozenset({"spend_30d", "spend_365d", "visits_30d", "days_since_activity",
                            "points_earned_365d"})
OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "exists")
COMBINATORS = ("all", "any", "not")

Predicate = Callable[[MemberState, float], bool]


def field_known(field: Any) -> bool:
    if not isinstance(field, str):
        return False
    if field in PLAIN_FIELDS:
        return True
    return any(field.startswith(p) and len(field) > len(p) for p in PREFIXED_FIELDS)


def validate_rule(rule: Any, path: str = "rule", depth: int = 0) -> list[Problem]:
    if depth > 20:
        return [{"field": path, "problem": "is nested too deeply (at most 20 levels)"}]
    if not isinstance(rule, dict):
        return [{"field": path, "problem": "must be an object"}]
    combinators = [k for k in COMBINATORS if k in rule]
    if combinators:
        if len(rule) != 1:
            return [{"field": path, "problem": "a combinator object has exactly one key: "
                                               "all, any or not"}]
        key = combinators[0]
        inner = rule[key]
        if key == "not":
            return validate_rule(inner, join(path, "not"), depth + 1)
        if not isinstance(inner, list) or not inner:
            return [{"field": join(path, key), "problem": "must be a non-empty list of rules"}]
        problems: list[Problem] = []
        for index, item in enumerate(inner):
            problems += validate_rule(item, join(join(path, key), index), depth + 1)
        return problems
    problems = []
    unknown = set(rule) - {"field", "op", "value"}
    for name in sorted(unknown):
        problems.append({"field": join(path, name), "problem": "is not a known key"})
    field, op = rule.get("field"), rule.get("op")
    if not field_known(field):
        problems.append({"field": join(path, "field"),
                         "problem": f"unknown field {field!r}; fields: "
                                    f"{', '.join(sorted(PLAIN_FIELDS))}, tags.<field>, "
                                    f"profile.<field>, consents.<name>"})
    if op not in OPS:
        problems.append({"field": join(path, "op"),
                         "problem": f"unknown op {op!r}; ops: {' '.join(OPS)}"})
        return problems
    if op != "exists" and "value" not in rule:
        problems.append({"field": join(path, "value"), "problem": "is required"})
        return problems
    value = rule.get("value")
    if op in ("in", "not_in") and not isinstance(value, list):
        problems.append({"field": join(path, "value"), "problem": f"must be a list for {op}"})
    if op in (">", ">=", "<", "<=") and (not isinstance(value, (int, float))
                                         or isinstance(value, bool)):
        problems.append({"field": join(path, "value"), "problem": f"must be a number for {op}"})
    if op == "exists" and "value" in rule and not isinstance(value, bool):
        problems.append({"field": join(path, "value"), "problem": "must be true or false"})
    return problems


def compile_rule(rule: dict) -> tuple[Predicate, frozenset[str]]:
    """A validated rule as a predicate over (state, time), and the fields it reads."""
    for key in ("all", "any"):
        if key in rule:
            parts = [compile_rule(r) for r in rule[key]]
            fields = frozenset().union(*(f for _, f in parts))
            return _combine(key, [p for p, _ in parts]), fields
    if "not" in rule:
        inner, fields = compile_rule(rule["not"])
        return (lambda state, at: not inner(state, at)), fields
    field = rule["field"]
    op, value = rule["op"], rule.get("value", True)
    attribute = ATTRIBUTES.get(field)
    fast = None if attribute is None else _attribute_condition(attrgetter(attribute), op, value)
    return fast or _condition(reader(field), op, value), frozenset({field})


def _combine(key: str, predicates: list[Predicate]) -> Predicate:
    """``all`` / ``any``, with the common one- and two-part rules unrolled."""
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        if key == "all":
            return lambda state, at: first(state, at) and second(state, at)
        return lambda state, at: first(state, at) or second(state, at)
    if key == "all":
        return lambda state, at: all(p(state, at) for p in predicates)
    return lambda state, at: any(p(state, at) for p in predicates)


def _attribute_condition(get: Callable[[MemberState], Any], op: str,
                         value: Any) -> Predicate | None:
    """The common conditions on a plain state attribute in one closure each (one call per
    condition instead of three); None for the others, which :func:`_condition` builds."""
    if op == "==":
        return lambda state, at: get(state) == value
    if op == "!=":
        return lambda state, at: get(state) != value
    if op not in (">", ">=", "<", "<="):
        return None
    bound = float(value)
    if op == ">":
        return lambda state, at: ((type(have := get(state)) is int or type(have) is float)
                                  and have > bound)
    if op == ">=":
        return lambda state, at: ((type(have := get(state)) is int or type(have) is float)
                                  and have >= bound)
    if op == "<":
        return lambda state, at: ((type(have := get(state)) is int or type(have) is float)
                                  and have < bound)
    return lambda state, at: ((type(have := get(state)) is int or type(have) is float)
                              and have <= bound)


def _condition(read: Callable[[MemberState, float], Any], op: str, value: Any) -> Predicate:
    if op == "exists":
        want = bool(value)
        return lambda state, at: (read(state, at) not in (None, "", [])) == want
    if op == "==":
        return lambda state, at: read(state, at) == value
    if op == "!=":
        return lambda state, at: read(state, at) != value
    if op in ("in", "not_in"):
        allowed = list(value)
        want = op == "in"

        def inside(state: MemberState, at: float) -> bool:
            have = read(state, at)
            if isinstance(have, list):
                return any(v in allowed for v in have) == want
            return (have in allowed) == want
        return inside
    if op == "contains":
        def contains(state: MemberState, at: float) -> bool:
            have = read(state, at)
            if isinstance(have, list):
                return value in have
            return isinstance(have, str) and isinstance(value, str) and value in have
        return contains
    bound = float(value)
    compare = {">": bound.__lt__, ">=": bound.__le__, "<": bound.__gt__, "<=": bound.__ge__}[op]

    def numeric(state: MemberState, at: float) -> bool:
        have = read(state, at)
        return (type(have) is int or type(have) is float) and compare(have)
    return numeric
