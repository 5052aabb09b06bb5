"""The segment rule language, interpreted (never ``eval``): ``{"all": [...]}``,
``{"any": [...]}``, ``{"not": rule}`` and conditions ``{"field", "op", "value"}``.

A rule is validated when it is defined (every bad path named, e.g. ``rule.all[1].op``) and
compiled into nested closures over a *facts* mapping (engine/facts.py computes the facts of a
member). Compiling also reports which fields the rule reads, so the program can index segments
by field and evaluate only those an event could have changed.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from engine.schema import Problem, join

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

Predicate = Callable[[Mapping[str, Any]], bool]


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
    """A validated rule as a predicate over facts, and the fields it reads."""
    if "all" in rule:
        parts = [compile_rule(r) for r in rule["all"]]
        predicates = [p for p, _ in parts]
        return (lambda facts: all(p(facts) for p in predicates),
                frozenset().union(*(f for _, f in parts)))
    if "any" in rule:
        parts = [compile_rule(r) for r in rule["any"]]
        predicates = [p for p, _ in parts]
        return (lambda facts: any(p(facts) for p in predicates),
                frozenset().union(*(f for _, f in parts)))
    if "not" in rule:
        inner, fields = compile_rule(rule["not"])
        return (lambda facts: not inner(facts)), fields
    return _condition(rule["field"], rule["op"], rule.get("value", True)), frozenset(
        {rule["field"]})


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def _condition(field: str, op: str, value: Any) -> Predicate:
    if op == "exists":
        want = bool(value)
        return lambda facts: (facts.get(field) not in (None, "", [])) == want
    if op == "==":
        return lambda facts: facts.get(field) == value
    if op == "!=":
        return lambda facts: facts.get(field) != value
    if op in ("in", "not_in"):
        allowed = list(value)
        inside = (lambda facts: facts.get(field) in allowed
                  if not isinstance(facts.get(field), list)
                  else any(v in allowed for v in facts.get(field)))
        return inside if op == "in" else (lambda facts: not inside(facts))
    if op == "contains":
        def contains(facts: Mapping[str, Any]) -> bool:
            have = facts.get(field)
            if isinstance(have, (list, tuple, set, frozenset)):
                return value in have
            return isinstance(have, str) and isinstance(value, str) and value in have
        return contains
    compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}[op]
    bound = float(value)

    def numeric(facts: Mapping[str, Any]) -> bool:
        have = _number(facts.get(field))
        return have is not None and compare(float(have), bound)
    return numeric
