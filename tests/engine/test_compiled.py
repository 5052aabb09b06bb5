"""What the program compiles ahead of events: message templates, and the one-closure
conditions on plain state attributes, which must decide exactly as the general ones."""

from __future__ import annotations

from itertools import product

from engine.rules import _condition, compile_rule
from engine.scenarios import template
from engine.state import MemberState, reader


def _member(**values) -> MemberState:
    return MemberState(id="m1", brand="b", joined=0.0, **values)


def test_templates_substitute_member_fields_and_leave_unknown_placeholders_empty():
    state = _member(balance=42, tier="gold", profile={"name": "Ola"})
    assert template("Hi {{member.profile.name}}, {{ member.balance }} pts")(state) == \
        "Hi Ola, 42 pts"
    assert template("{{member.profile.city}}|{{member.nope}}|{{member.tags.x}}|{{x}}")(
        state) == "||" + "|{{x}}"
    assert template("{{member.id}}{{member.tier}}")(state) == "m1gold"
    assert template("no placeholders")(state) == "no placeholders"
    assert template(None)(state) is None and template(7)(state) == 7


def test_object_templates_are_rendered_value_by_value_into_new_containers():
    render = template({"who": "{{member.id}}", "list": ["{{member.balance}}", 1], "n": None})
    first, second = render(_member(balance=3)), render(_member(balance=3))
    assert first == {"who": "m1", "list": ["3", 1], "n": None}
    assert first is not second and first["list"] is not second["list"]


def test_attribute_conditions_decide_as_the_general_ones():
    values = [None, True, 0, 5, 5.0, 7.5, -1, "5", "gold", ["gold"]]
    for field, attribute in (("balance", "balance"), ("tier", "tier"),
                             ("streak", "streak_current")):
        for op, value, have in product(("==", "!=", ">", ">=", "<", "<="), (5, 0, "gold"),
                                       values):
            if op not in ("==", "!=") and not isinstance(value, int):
                continue
            rule = {"field": field, "op": op, "value": value}
            fast, fields = compile_rule(rule)
            general = _condition(reader(field), op, value)
            state = _member(**{attribute: have})
            assert fast(state, 0.0) == general(state, 0.0), (rule, have)
            assert fields == frozenset({field})
