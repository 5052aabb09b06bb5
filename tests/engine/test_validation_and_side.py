"""Validation that names every problem; time-based triggers; the side agents' logic."""

from __future__ import annotations

import orjson
import pytest

from engine.events import (EventError, checked_event, event_json_schema, parse_event,
                           to_document)
from engine.program import (compile_program, json_schema, validate_pool, validate_scenario,
                            validate_settings, validate_trigger)
from engine.schema import parse_time
from engine.side import apply_goal, apply_pool, apply_reward
from tests.engine.driver import World


def fields(problems):
    return sorted(p["field"] for p in problems)


def test_an_event_lists_every_bad_field():
    with pytest.raises(EventError) as error:
        parse_event({"type": "purchase", "member": "m", "time": "yesterday",
                     "data": {"amount": -3, "items": [{"sku": "a", "qty": 0}], "colour": "red"}},
                    now=0)
    assert fields(error.value.details) == ["data.amount", "data.colour", "data.items[0].price",
                                           "data.items[0].qty", "data.transaction", "id",
                                           "time"]


def test_internal_event_types_are_refused_from_outside():
    document = {"id": "x", "type": "referral.qualified", "member": "m",
                "data": {"referred": "n"}}
    assert parse_event(document, 0).type == "referral.qualified"
    with pytest.raises(EventError) as error:
        parse_event(document, 0, internal=False)
    assert fields(error.value.details) == ["type"]
    assert "referral.qualified" not in str(event_json_schema())


def test_an_event_the_api_wrote_reads_back_equal_without_a_second_validation():
    document = {"id": "e1", "type": "purchase", "member": "m1",
                "time": "2026-03-01T10:00:00.250+01:00",
                "data": {"transaction": "t1", "amount": 12.5,
                         "items": [{"sku": "A", "qty": 2, "price": 6.25}]}}
    accepted = parse_event(document, now=1.7e9, internal=False)
    as_written = orjson.loads(orjson.dumps(to_document(accepted)))
    assert checked_event(as_written) == accepted == parse_event(as_written, now=0.0)


def test_a_scenario_lists_every_problem_including_unknown_references():
    program = compile_program({"tiers": {"gold": {"name": "G", "rank": 1,
                                                  "metric": "spend_total", "min": 1}}})
    problems = validate_scenario({
        "name": "", "trigger": "nope", "tiers": ["gold", "platinum"], "segments": ["ghost"],
        "window": {"from": "2026-04-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        "actions": [{"type": "points.subtract"}, {"type": "webhook", "url": "ftp://x/y/z"},
                    {"type": "reward.issue", "reward": "r1"}, {"type": "tier.set",
                                                              "tier": "gold"}]}, program)
    assert fields(problems) == ["actions[0]", "actions[1].url", "actions[2].reward", "name",
                                "segments[0]", "tiers[1]", "trigger", "window.to"]


def test_settings_triggers_and_pools_are_validated():
    assert fields(validate_settings({"rounding": "up", "chain_depth": 0,
                                     "referral": {"qualify": {"spend": 1, "points": 1}}})) == [
        "chain_depth", "referral.qualify", "rounding"]
    assert fields(validate_settings({"referral": {"qualify": {"spend": 1, "points": 1}},
                                     "timezone": "Mars/Olympus"})) == ["referral.qualify",
                                                                      "timezone"]
    assert fields(validate_trigger({"type": "date", "at": "2026-01-01T00:00:00Z",
                                    "day": 1, "months": [1]})) == ["at"]
    assert fields(validate_trigger({"type": "segment_entered"})) == ["segment"]
    assert fields(validate_pool({"name": "P", "kind": "multi_use"})) == ["code"]
    assert json_schema("triggers")["properties"]["type"]["enum"][0] == "on_demand"


def test_a_scenario_window_that_is_not_a_time_is_a_problem_not_an_error():
    """Found by the API fuzzer once validation was compiled: ``{"to": {}}`` reached
    ``parse_time`` with a dict."""
    scenario = {"name": "S", "trigger": "member.joined",
                "actions": [{"type": "points.add", "points": 1}],
                "window": {"from": "2000-01-01T00:00:00Z", "to": {}}}
    assert fields(validate_scenario(scenario)) == ["window.to"]
    assert parse_time({}) is None and parse_time(3) is None and parse_time("soon") is None


def test_a_time_zone_that_names_a_folder_or_is_too_long_is_a_problem():
    for zone in ("Europe", "Europe/Warsaw/x", "a" * 300, "../x"):
        assert fields(validate_settings({"timezone": zone})) == ["timezone"], zone


def test_scenario_lists_that_are_not_lists_are_problems_against_a_program_too():
    """Found by the API fuzzer: ``"segments": 5.5e16`` with a program to check ids against."""
    program = compile_program({})
    scenario = {"name": "S", "trigger": "member.joined", "segments": 5.5e16, "tiers": 3,
                "actions": 7}
    assert fields(validate_scenario(scenario, program)) == ["actions", "segments", "tiers"]


def test_a_birthday_fires_at_the_configured_hour_once_a_year():
    world = World(triggers={"bday": {"type": "birthday", "hour": 8}},
                  scenarios={"gift": {"name": "Gift", "trigger": "bday",
                                      "actions": [{"type": "points.add", "points": 100}]}})
    world.join("ola", time="2026-01-01T00:00:00Z", profile={"birthday": "1990-03-15"})
    assert world.state("ola").due == [[1773561600.0, "birthday"]]  # 2026-03-15T08:00Z
    world.fire_timers("ola", until="2027-03-16T00:00:00Z")
    assert world.ledger("ola") == [("award", 100), ("award", 100)]


def test_a_yearly_date_trigger_runs_at_most_once_a_month():
    world = World(triggers={"payday": {"type": "date", "day": 10, "months": [1, 2], "hour": 12}},
                  scenarios={"pay": {"name": "Pay", "trigger": "payday",
                                     "actions": [{"type": "points.add", "points": 1}]}})
    world.join("ola", time="2026-01-01T00:00:00Z")
    world.fire_timers("ola", until="2027-01-31T00:00:00Z")
    assert [e.time for e in world.executions("ola")] == [1768046400.0, 1770724800.0,
                                                          1799582400.0]


def test_a_one_off_date_without_an_offset_is_a_time_in_the_programs_time_zone():
    world = World({"timezone": "Europe/Warsaw"},
                  triggers={"launch": {"type": "date", "at": "2026-06-01T09:00:00"},
                            "utc": {"type": "date", "at": "2026-06-02T09:00:00Z"}},
                  scenarios={"a": {"name": "A", "trigger": "launch",
                                   "actions": [{"type": "points.add", "points": 1}]},
                             "b": {"name": "B", "trigger": "utc",
                                   "actions": [{"type": "points.add", "points": 2}]}})
    world.join("ola", time="2026-05-01T00:00:00Z")
    assert sorted(t for t, kind in world.state("ola").due if kind == "date")[0] == \
        parse_time("2026-06-01T07:00:00Z")                  # 09:00 in Warsaw (CEST)
    world.fire_timers("ola", until="2026-06-03T00:00:00Z")
    assert [(e.scenario, e.time) for e in world.executions("ola")] == [
        ("a", parse_time("2026-06-01T07:00:00Z")), ("b", parse_time("2026-06-02T09:00:00Z"))]


def test_reward_stock_is_reserved_once_per_order_and_released_when_unpaid():
    program = compile_program({"rewards": {"mug": {"name": "Mug", "kind": "physical",
                                                   "points": 10, "stock": 1}}})

    def order(n):
        return {"id": f"o{n}:reserve", "type": "reward.reserve", "member": f"m{n}",
                "data": {"order": f"o{n}", "reward": "mug", "points": 10, "member": f"m{n}"}}
    answers: dict = {}
    state, replies = apply_reward(None, order(1), program, answers)
    assert replies[0].event["type"] == "reward.reserved"
    state, again = apply_reward(state, order(1), program, answers)
    assert again == replies and state["reserved"] == 1
    state, replies = apply_reward(state, order(2), program, answers)
    assert replies[0].event["type"] == "reward.refused"
    release = {"id": "o1:release", "type": "reward.release", "member": "m1",
               "data": {"order": "o1", "reward": "mug", "member": "m1"}}
    state, _ = apply_reward(state, release, program, answers)
    state, _ = apply_reward(state, release, program, answers)
    assert state["reserved"] == 0
    state, replies = apply_reward(state, order(3), program, answers)
    assert replies[0].event["type"] == "reward.reserved"


def test_single_use_codes_are_issued_at_most_once_and_a_dry_pool_is_reported():
    program = compile_program({"pools": {"p": {"name": "P", "kind": "single_use",
                                               "codes": ["A"]}}})

    def issue(n):
        return {"id": f"r{n}", "type": "pool.issue", "member": "p",
                "data": {"request": f"r{n}", "pool": "p", "member": f"m{n}"}}
    answers: dict = {}
    state, [first] = apply_pool(None, issue(1), program, answers)
    state, [repeat] = apply_pool(state, issue(1), program, answers)
    assert first.event["data"]["code"] == repeat.event["data"]["code"] == "A"
    state, [dry] = apply_pool(state, issue(2), program, answers)
    assert dry.event["type"] == "promo.refused" and state["dry"]
    added = {"id": "add-1", "type": "pool.codes_added", "member": "p",
             "data": {"pool": "p", "codes": ["A", "B", "B"]}}
    state, _ = apply_pool(state, added, program, answers)
    state, _ = apply_pool(state, added, program, answers)
    assert state["available"] == ["B"] and not state["dry"]
    state, [issued] = apply_pool(state, issue(3), program, answers)
    assert issued.event["data"]["code"] == "B"


def test_a_collective_goal_tells_every_donor_once_when_reached():
    program = compile_program({"goals": {"trees": {"name": "Trees", "points": 100}}})

    def donation(n, member, points):
        return {"id": f"d{n}", "type": "goal.donation", "member": member,
                "data": {"goal": "trees", "member": member, "points": points,
                         "donation": f"d{n}"}}
    answers: dict = {}
    state, out = apply_goal(None, donation(1, "a", 60), program, answers)
    assert out == []
    state, out = apply_goal(state, donation(1, "a", 60), program, answers)
    assert state["total"] == 60
    state, out = apply_goal(state, donation(2, "b", 50), program, answers)
    assert sorted(e.key for e in out) == ["a", "b"]
    state, out = apply_goal(state, donation(3, "c", 50), program, answers)
    assert out == []


def test_donating_to_a_goal_spends_points_and_fires_goal_donated():
    world = World(goals={"trees": {"name": "Trees", "points": 100}},
                  triggers={"gave": {"type": "goal_donated", "goal": "trees"}},
                  scenarios={"thanks": {"name": "Thanks", "trigger": "gave", "actions": [
                      {"type": "message.internal", "body": "Thank you"}]}})
    world.join("ola")
    world.send("ola", "points.added", points=50)
    world.send("ola", "goal.donated", goal="trees", points=30)
    assert world.ledger("ola")[-1] == ("donate", -30)
    assert [m.body for m in world.messages("ola")] == ["Thank you"]
    assert world.outbox[-1].topic == "goals"
