"""What the program compiles ahead of events: message templates, and segment conditions that
read a member's facts as the state holds them."""

from __future__ import annotations

import operator
from itertools import product

from engine.rules import Attribute, condition
from engine.scenarios import template
from engine.state import MemberState
from tests.engine.driver import World


def _member(**values) -> MemberState:
    return MemberState(id="m1", brand="b", joined=0.0, **values)


def _render(text, state: MemberState):
    return template(text).render(state, 0.0)


def test_templates_substitute_member_fields_and_leave_unknown_placeholders_empty():
    state = _member(balance=42, tier="gold", profile={"name": "Ola"})
    assert _render("Hi {{member.profile.name}}, {{ member.balance }} pts", state) == \
        "Hi Ola, 42 pts"
    assert _render("{{member.profile.city}}|{{member.nope}}|{{member.tags.x}}|{{x}}",
                   state) == "||" + "|{{x}}"
    assert _render("{{member.id}}{{member.tier}}", state) == "m1gold"
    assert _render("no placeholders", state) == "no placeholders"
    assert _render(None, state) is None and _render(7, state) == 7


def test_object_templates_are_rendered_value_by_value_into_new_containers():
    render = template({"who": "{{member.id}}", "list": ["{{member.balance}}", 1], "n": None})
    first, second = render.render(_member(balance=3), 0.0), render.render(_member(balance=3), 0.0)
    assert first == {"who": "m1", "list": ["3", 1], "n": None}
    assert first is not second and first["list"] is not second["list"]


COMPARISONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def test_conditions_compare_numbers_only_and_test_equality_of_any_value():
    values = {"balance": [0, 5, -1], "last_activity": [None, 5.0, 7.5],
              "tier": [None, "5", "gold"], "activated": [True, False]}
    for (attribute, haves), bound in product(values.items(), (5, 0)):
        for have in haves:
            state = _member(**{attribute: have})
            number = type(have) in (int, float)
            for op, compare in COMPARISONS.items():
                holds = condition(Attribute(attribute), op, bound).holds(state, 0.0)
                assert holds == (number and compare(have, bound)), (attribute, have, op, bound)
            for value in (bound, "gold", None):
                assert condition(Attribute(attribute), "==", value).holds(state, 0.0) == \
                    (have == value)
                assert condition(Attribute(attribute), "!=", value).holds(state, 0.0) == \
                    (have != value)


def test_integers_written_as_floats_compile_into_integers():
    """JSON Schema counts 3.0 as an integer; compiled, the program's and the state's ``int``
    fields take only ints, so the program converts them."""
    world = World({"expiry_days": 30.0, "chain_depth": 5.0,
                   "referral": {"qualify": {"points": 10.0}}},
                  tiers={"gold": {"name": "Gold", "rank": 1.0, "metric": "spend_total",
                                  "min": 10}},
                  triggers={"monthly": {"type": "date", "day": 1.0, "months": [4],
                                        "hour": 9.0}},
                  scenarios={"once": {"name": "Once", "trigger": "points.standard_added",
                                      "limit_per_member": 1.0,
                                      "actions": [{"type": "points.add", "points": 5.0}]}})
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=20.0)
    world.send("ola", "purchase", transaction="t2", amount=20.0)
    state = world.state("ola")
    assert (state.balance, state.tier) == (45, "gold")
    assert sorted(kind for _, kind in state.due) == ["date", "expiry"]
