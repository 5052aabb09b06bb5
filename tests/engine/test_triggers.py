"""Configurable triggers each fire their scenario when (and only when) their condition holds;
brand settings override the base field by field; imports meet the blacklist like joins."""

from __future__ import annotations

from engine.program import compile_program
from tests.engine.driver import World


def _bonus(trigger: str, points: int = 1) -> dict:
    return {"name": f"on {trigger}", "trigger": trigger,
            "actions": [{"type": "points.add", "points": points}]}


def test_profile_completed_fires_once_when_the_chosen_fields_are_all_filled():
    world = World(triggers={"done": {"type": "profile_completed",
                                     "fields": ["email", "city"]}},
                  scenarios={"s": _bonus("done", 20)})
    world.join("ola", profile={"email": "ola@example.com"})
    world.send("ola", "member.profile_updated", profile={"phone": "+48500"})
    assert world.state("ola").balance == 0
    world.send("ola", "member.profile_updated", profile={"city": "Gdańsk"})
    world.send("ola", "member.profile_updated", profile={"city": "Sopot"})
    assert world.state("ola").balance == 20


def test_consent_granted_fires_on_the_named_consent_only():
    world = World(triggers={"news": {"type": "consent_granted", "consent": "newsletter"}},
                  scenarios={"s": _bonus("news", 5)})
    world.join("ola")
    world.send("ola", "member.consent_changed", consent="sms", status="granted")
    world.send("ola", "member.consent_changed", consent="newsletter", status="withdrawn")
    assert world.state("ola").balance == 0
    world.send("ola", "member.consent_changed", consent="newsletter", status="granted")
    assert world.state("ola").balance == 5
    assert world.state("ola").consents == {"sms": "granted", "newsletter": "granted"}


def test_balance_exceeded_fires_once_per_member():
    world = World(triggers={"rich": {"type": "balance_exceeded", "points": 100}},
                  scenarios={"s": {"name": "Rich", "trigger": "rich", "actions": [
                      {"type": "message.internal", "body": "{{member.balance}} points!"}]}})
    world.join("ola")
    world.send("ola", "points.added", points=150)
    world.send("ola", "points.subtracted", points=100)
    world.send("ola", "points.added", points=100)
    assert [m.body for m in world.messages("ola")] == ["150 points!"]


def test_quiz_solved_and_goal_reached_match_their_parameter():
    world = World(triggers={"quiz": {"type": "quiz_solved", "quiz": "q1"},
                            "goal": {"type": "goal_reached", "goal": "trees"}},
                  scenarios={"q": _bonus("quiz", 3), "g": _bonus("goal", 7)})
    world.join("ola")
    world.send("ola", "quiz.solved", quiz="q2")
    world.send("ola", "quiz.solved", quiz="q1")
    world.send("ola", "goal.reached", goal="trees")
    assert world.ledger("ola") == [("award", 3), ("award", 7)]


def test_an_on_demand_trigger_runs_when_fired_for_the_member():
    world = World(triggers={"promo": {"type": "on_demand"}},
                  scenarios={"s": _bonus("promo", 9)})
    world.join("ola")
    world.send("ola", "trigger.fired", trigger="promo")
    world.send("ola", "trigger.fired", trigger="unknown")
    assert world.state("ola").balance == 9


def test_referral_qualifies_on_points_earned_when_the_program_says_so():
    world = World({"points_per_unit": 1, "referral": {"qualify": {"points": 50}}},
                  scenarios={"s": _bonus("referral.qualified", 20)})
    world.join("anna")
    world.join("bob", referrer="anna")
    world.send("bob", "purchase", transaction="t1", amount=30.0)
    assert world.state("anna").balance == 0
    world.send("bob", "points.added", points=20)
    assert world.state("anna").balance == 20


def test_brand_settings_override_the_default_field_by_field():
    program = compile_program({"program": {"default": {"points_per_unit": 1, "rounding": "ceil"},
                                           "shop-b": {"points_per_unit": 3}}})
    assert program.settings("shop-b").points_per_unit == 3
    assert program.settings("shop-b").rounding == "ceil"
    assert program.settings("any-other").points_per_unit == 1


def test_an_import_meets_the_blacklist_like_a_join():
    world = World(blacklist={"default": {"phones": ["+48 500 100 200"], "emails": []}})
    world.send("jan", "member.joined", channel="import",
               profile={"phone": "+48500100200"})
    assert "jan" not in world.states
    assert [r.reason for r in world.rejections("jan")] == ["blacklisted"]
