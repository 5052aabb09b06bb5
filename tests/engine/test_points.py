"""Points: conversion and rounding, manual operations, pending points, expiry, returns."""

from __future__ import annotations

import pytest

from engine.context import round_points
from tests.engine.driver import World


@pytest.mark.parametrize("rule, value, expected", [
    ("floor", 12.99, 12), ("round", 12.5, 13), ("round", 12.49, 12), ("ceil", 12.01, 13),
    ("floor", 0.1 * 3 * 10, 3), ("ceil", 3.0000000001, 3)])
def test_rounding_rules(rule, value, expected):
    assert round_points(value, rule) == expected


def test_the_tier_rate_overrides_the_program_rate():
    world = World({"points_per_unit": 1},
                  tiers={"gold": {"name": "Gold", "rank": 1, "metric": "spend_total",
                                  "min": 100, "points_per_unit": 3}})
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=100.0)
    assert world.state("ola").tier == "gold"
    world.send("ola", "purchase", transaction="t2", amount=10.0)
    assert world.ledger("ola") == [("earn", 100), ("earn", 30)]


def test_manual_subtraction_never_goes_below_zero_and_is_refused_with_a_reason():
    world = World()
    world.join("ola")
    world.send("ola", "points.added", points=30, reason="goodwill")
    world.send("ola", "points.subtracted", points=50)
    assert world.state("ola").balance == 30
    [refusal] = world.rejections("ola")
    assert refusal.reason == "insufficient_points"
    assert refusal.details[0]["field"] == "data.points"
    world.send("ola", "points.subtracted", points=20)
    assert world.ledger("ola") == [("earn", 30), ("spend", -20)]


def test_the_multiplier_never_applies_to_subtractions_or_occasional_awards():
    world = World(triggers={"big": {"type": "balance_exceeded", "points": 50}},
                  scenarios={
                      "x2": {"name": "x2", "trigger": "points.standard_added",
                             "actions": [{"type": "points.multiply", "percent": 100}]},
                      "sub": {"name": "sub", "trigger": "points.standard_subtracted",
                              "actions": [{"type": "points.multiply", "percent": 100}]},
                      "award": {"name": "award", "trigger": "big",
                                "actions": [{"type": "points.add", "points": 7},
                                            {"type": "points.multiply", "percent": 100}]}})
    world.join("ola")
    world.send("ola", "points.added", points=30)
    world.send("ola", "points.subtracted", points=10)
    assert world.ledger("ola") == [("earn", 30), ("bonus", 30), ("award", 7), ("spend", -10)]


def test_pending_points_unlock_when_the_returns_window_ends():
    world = World({"pending_days": 14})
    world.join("ola")
    world.send("ola", "purchase", time="2026-03-01T10:00:00Z", transaction="t1", amount=80.0)
    state = world.state("ola")
    assert (state.balance, state.to_view()["pending"]) == (0, 80)
    assert world.ledger("ola") == []
    world.fire_timers("ola", until="2026-03-15T10:00:00Z")
    state = world.state("ola")
    assert (state.balance, state.to_view()["pending"]) == (80, 0)
    assert world.ledger("ola") == [("earn", 80)]


def test_a_return_inside_the_window_cancels_pending_points_before_they_unlock():
    world = World({"pending_days": 14})
    world.join("ola")
    world.send("ola", "purchase", time="2026-03-01T10:00:00Z", transaction="t1", amount=80.0)
    world.send("ola", "return", time="2026-03-03T10:00:00Z", transaction="t1", amount=20.0)
    assert world.state("ola").to_view()["pending"] == 60
    world.fire_timers("ola", until="2026-04-01T00:00:00Z")
    assert world.ledger("ola") == [("earn", 60)]


def test_points_expire_oldest_first_with_an_expire_entry_at_the_due_time():
    world = World({"expiry_days": 30})
    world.join("ola")
    world.send("ola", "points.added", time="2026-03-01T00:00:00Z", points=50)
    world.send("ola", "points.added", time="2026-03-20T00:00:00Z", points=40)
    world.send("ola", "points.subtracted", time="2026-03-21T00:00:00Z", points=30)
    assert world.state("ola").due[0] == [world.state("ola").lots[0], "expiry"]
    world.fire_timers("ola", until="2026-04-01T00:00:00Z")
    assert world.ledger("ola")[-1] == ("expire", -20)
    world.fire_timers("ola", until="2026-04-30T00:00:00Z")
    assert world.ledger("ola")[-1] == ("expire", -40)
    assert world.state("ola").balance == 0


def test_a_return_reverses_points_and_bonus_in_proportion():
    world = World(scenarios={"x2": {"name": "x2", "trigger": "points.standard_added",
                                    "actions": [{"type": "points.multiply", "percent": 100}]}})
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=100.0)
    world.send("ola", "return", transaction="t1", amount=25.0)
    world.send("ola", "return", transaction="t1", amount=25.0)
    assert world.ledger("ola")[2:] == [("reversal", -50), ("reversal", -50)]
    assert world.state("ola").balance == 100


def test_a_return_of_spent_points_takes_what_is_left_and_never_goes_negative():
    world = World()
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=100.0)
    world.send("ola", "points.subtracted", points=90)
    world.send("ola", "return", transaction="t1", amount=100.0)
    assert world.ledger("ola")[-1] == ("reversal", -10)
    assert world.state("ola").balance == 0


def test_returns_of_unknown_transactions_or_more_than_was_bought_are_refused():
    world = World()
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=10.0)
    world.send("ola", "return", transaction="nope", amount=5.0)
    world.send("ola", "return", transaction="t1", amount=11.0)
    assert [r.reason for r in world.rejections("ola")] == ["unknown_transaction",
                                                          "invalid_return"]
    assert world.state("ola").balance == 10


def test_the_same_transaction_is_not_earned_twice_under_another_event_id():
    world = World()
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=10.0)
    world.send("ola", "purchase", transaction="t1", amount=10.0)
    assert world.state("ola").balance == 10
    assert world.rejections("ola")[0].reason == "duplicate_transaction"
