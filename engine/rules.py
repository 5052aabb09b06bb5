"""The segment rule language, interpreted (never ``eval``): ``{"all": [...]}``,
``{"any": [...]}``, ``{"not": rule}`` and conditions ``{"field", "op", "value"}``.

A rule is validated when it is defined (every bad path named, e.g. ``rule.all[1].op``) and
compiled into a tree of :class:`Rule` objects whose ``holds(state, at)`` reads each field
straight from the member state (:class:`Fact`) at the event's time. Compiling also reports which
fields the rule reads, so the program can index segments by field and evaluate only those an
event could have changed. Rules and facts are small classes rather than closures: a method call
on a compiled class is a direct call under mypyc.
"""

from __future__ import annotations

from typing import Any

from engine.schema import Problem, join
from engine.state import DAY, MemberState, day_number, window_sum

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


# -- facts: how a rule (or a tier's metric) reads a field of a member at a time ---------------

class Fact:
    def read(self, state: MemberState, at: float) -> Any:
        raise NotImplementedError


class Attribute(Fact):
    """A state attribute as it is."""

    def __init__(self, name: str) -> None:
        self.name = name

    def read(self, state: MemberState, at: float) -> Any:
        return getattr(state, self.name)


class Rolling(Fact):
    """The sum of one aggregate's day buckets over the ``days`` days ending at ``at``."""

    def __init__(self, buckets: str, days: int) -> None:
        self.buckets = buckets
        self.days = days

    def read(self, state: MemberState, at: float) -> Any:
        return window_sum(getattr(state, self.buckets), day_number(at), self.days)


class PendingPoints(Fact):
    def read(self, state: MemberState, at: float) -> Any:
        return state.pending_points


class DaysSinceActivity(Fact):
    def read(self, state: MemberState, at: float) -> Any:
        last = state.last_activity
        return None if last is None else int(max(0.0, at - last) // DAY)


class Entry(Fact):
    """One key of a tags, profile or consents dict, with the value a missing key reads as."""

    def __init__(self, container: str, key: str, missing: Any) -> None:
        self.container = container
        self.key = key
        self.missing = missing

    def read(self, state: MemberState, at: float) -> Any:
        return getattr(state, self.container).get(self.key, self.missing)


#: The plain facts; ``tags.``, ``profile.`` and ``consents.`` fields are :class:`Entry` facts.
FACTS: dict[str, Fact] = {
    **{name: Attribute(name) for name in ("balance", "tier", "brand", "status", "spend_total",
                                          "purchases_total", "points_earned_total")},
    "streak": Attribute("streak_current"),
    "pending": PendingPoints(),
    "spend_30d": Rolling("spend_days", 30),
    "spend_365d": Rolling("spend_days", 365),
    "points_earned_365d": Rolling("earned_days", 365),
    "visits_30d": Rolling("visit_days", 30),
    "days_since_activity": DaysSinceActivity(),
}
#: What a missing entry reads as, by container (a missing tag field has no tags).
MISSING: dict[str, Any] = {"tags": [], "profile": None, "consents": "undetermined"}


def fact(name: str) -> Fact:
    """How a rule reads a field: a plain fact, ``tags.x``, ``profile.x`` or ``consents.x``."""
    plain = FACTS.get(name)
    if plain is not None:
        return plain
    container, _, key = name.partition(".")
    if container not in MISSING or not key:
        raise ValueError(f"unknown field {name!r}")
    return Entry(container, key, MISSING[container])


# -- rules -------------------------------------------------------------------------------------

class Rule:
    def holds(self, state: MemberState, at: float) -> bool:
        raise NotImplementedError


class AllOf(Rule):
    def __init__(self, parts: list[Rule]) -> None:
        self.parts = tuple(parts)

    def holds(self, state: MemberState, at: float) -> bool:
        for part in self.parts:
            if not part.holds(state, at):
                return False
        return True


class AnyOf(Rule):
    def __init__(self, parts: list[Rule]) -> None:
        self.parts = tuple(parts)

    def holds(self, state: MemberState, at: float) -> bool:
        for part in self.parts:
            if part.holds(state, at):
                return True
        return False


class Not(Rule):
    def __init__(self, inner: Rule) -> None:
        self.inner = inner

    def holds(self, state: MemberState, at: float) -> bool:
        return not self.inner.holds(state, at)


class Exists(Rule):
    """The field has a value: not missing, not ``null``, not ``""``, not ``[]``."""

    def __init__(self, fact: Fact, want: bool) -> None:
        self.fact = fact
        self.want = want

    def holds(self, state: MemberState, at: float) -> bool:
        return (self.fact.read(state, at) not in (None, "", [])) == self.want


class Equals(Rule):
    def __init__(self, fact: Fact, value: Any) -> None:
        self.fact = fact
        self.value = value

    def holds(self, state: MemberState, at: float) -> bool:
        return bool(self.fact.read(state, at) == self.value)


class NotEquals(Rule):
    def __init__(self, fact: Fact, value: Any) -> None:
        self.fact = fact
        self.value = value

    def holds(self, state: MemberState, at: float) -> bool:
        return bool(self.fact.read(state, at) != self.value)


class In(Rule):
    """``in`` / ``not_in``: a list field is in when any of its items is."""

    def __init__(self, fact: Fact, allowed: list, want: bool) -> None:
        self.fact = fact
        self.allowed = allowed
        self.want = want

    def holds(self, state: MemberState, at: float) -> bool:
        have = self.fact.read(state, at)
        if isinstance(have, list):
            return any(v in self.allowed for v in have) == self.want
        return (have in self.allowed) == self.want


class Contains(Rule):
    """A list field holds the value, or a text field contains it."""

    def __init__(self, fact: Fact, value: Any) -> None:
        self.fact = fact
        self.value = value

    def holds(self, state: MemberState, at: float) -> bool:
        have = self.fact.read(state, at)
        if isinstance(have, list):
            return self.value in have
        return isinstance(have, str) and isinstance(self.value, str) and self.value in have


class Compare(Rule):
    """``>``, ``>=``, ``<``, ``<=`` against a number; a value that is not a number (a bool, a
    text, nothing) never compares."""

    def __init__(self, fact: Fact, op: str, bound: float) -> None:
        self.fact = fact
        self.op = op
        self.bound = bound

    def holds(self, state: MemberState, at: float) -> bool:
        have = self.fact.read(state, at)
        if type(have) is not int and type(have) is not float:
            return False
        op, bound = self.op, self.bound
        if op == ">":
            return bool(have > bound)
        if op == ">=":
            return bool(have >= bound)
        if op == "<":
            return bool(have < bound)
        return bool(have <= bound)


def compile_rule(rule: dict) -> tuple[Rule, frozenset[str]]:
    """A validated rule, and the fields it reads."""
    for key in ("all", "any"):
        if key in rule:
            parts = [compile_rule(r) for r in rule[key]]
            fields = frozenset(name for _, read in parts for name in read)
            rules = [r for r, _ in parts]
            if len(rules) == 1:
                return rules[0], fields
            return (AllOf(rules) if key == "all" else AnyOf(rules)), fields
    if "not" in rule:
        inner, fields = compile_rule(rule["not"])
        return Not(inner), fields
    field = rule["field"]
    return condition(fact(field), rule["op"], rule.get("value", True)), frozenset({field})


def condition(read: Fact, op: str, value: Any) -> Rule:
    if op == "exists":
        return Exists(read, bool(value))
    if op == "==":
        return Equals(read, value)
    if op == "!=":
        return NotEquals(read, value)
    if op in ("in", "not_in"):
        return In(read, list(value), op == "in")
    if op == "contains":
        return Contains(read, value)
    return Compare(read, op, float(value))
