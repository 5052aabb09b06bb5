"""Tiers, segments, scenarios (filters, limits, chaining, actions), brands, the blacklist."""

from __future__ import annotations

from engine.effects import ChainCut, SendEvent, Webhook
from engine.rules import compile_rule
from engine.state import MemberState
from tests.engine.driver import World

TIERS = {"silver": {"name": "Silver", "rank": 1, "metric": "spend_365d", "min": 100},
         "gold": {"name": "Gold", "rank": 2, "metric": "spend_365d", "min": 1000}}


def test_tiers_reclassify_in_stream_and_fire_tier_changed_with_from_and_to():
    world = World(tiers=TIERS,
                  triggers={"to-gold": {"type": "tier_changed", "from": "silver", "to": "gold"}},
                  scenarios={"congrats": {"name": "Gold!", "trigger": "to-gold", "actions": [
                      {"type": "message.push", "title": "Gold", "body": "You are gold"}]}})
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=150.0)
    assert world.state("ola").tier == "silver"
    world.send("ola", "purchase", transaction="t2", amount=900.0)
    assert world.state("ola").tier == "gold"
    assert [m.title for m in world.messages("ola")] == ["Gold"]


def test_a_rolling_tier_is_downgraded_by_its_timer_when_the_window_drops_the_spend():
    world = World(tiers=TIERS)
    world.join("ola", time="2025-01-01T00:00:00Z")
    world.send("ola", "purchase", time="2025-01-10T12:00:00Z", transaction="t1", amount=1200.0)
    world.send("ola", "purchase", time="2025-06-01T12:00:00Z", transaction="t2", amount=200.0)
    assert world.state("ola").tier == "gold"
    assert [kind for _, kind in world.state("ola").due] == ["downgrade"]
    world.fire_timers("ola", until="2026-01-11T00:00:00Z")
    assert world.state("ola").tier == "silver"
    world.fire_timers("ola", until="2026-06-02T00:00:00Z")
    assert world.state("ola").tier is None


def test_segment_rules_cover_every_operator_on_member_facts():
    state = MemberState(id="m", brand="b", joined=0.0, balance=120, tier="gold",
                        tags={"flags": ["staff"]}, profile={"city": "Kraków"},
                        consents={"email": "granted"})

    def holds(rule):
        return compile_rule(rule)[0].holds(state, 0.0)
    assert holds({"field": "balance", "op": ">=", "value": 120})
    assert not holds({"field": "balance", "op": ">", "value": 120})
    assert holds({"field": "tier", "op": "in", "value": ["gold", "silver"]})
    assert holds({"field": "tier", "op": "not_in", "value": ["bronze"]})
    assert holds({"field": "tags.flags", "op": "contains", "value": "staff"})
    assert holds({"field": "profile.city", "op": "==", "value": "Kraków"})
    assert holds({"field": "profile.phone", "op": "exists", "value": False})
    assert holds({"field": "consents.email", "op": "==", "value": "granted"})
    assert holds({"all": [{"field": "balance", "op": "<", "value": 500},
                          {"not": {"field": "tags.flags", "op": "contains", "value": "vip"}}]})
    assert holds({"any": [{"field": "tier", "op": "==", "value": "bronze"},
                          {"field": "brand", "op": "!=", "value": "x"}]})
    assert compile_rule({"all": [{"field": "balance", "op": ">", "value": 1},
                                 {"field": "tags.x", "op": "exists"}]})[1] == {"balance",
                                                                              "tags.x"}


def test_leaving_a_segment_fires_segment_left():
    world = World(segments={"rich": {"name": "Rich", "rule": {
                      "field": "balance", "op": ">=", "value": 100}}},
                  triggers={"poorer": {"type": "segment_left", "segment": "rich"}},
                  scenarios={"miss-you": {"name": "Miss you", "trigger": "poorer", "actions": [
                      {"type": "message.sms", "body": "Balance {{member.balance}}"}]}})
    world.join("ola")
    world.send("ola", "points.added", points=150)
    world.send("ola", "points.subtracted", points=100)
    assert world.state("ola").segments == []
    assert [m.body for m in world.messages("ola")] == ["Balance 50"]


def test_scenario_filters_limit_and_one_execution_per_occurrence():
    world = World(tiers=TIERS, scenarios={
        "gold-only": {"name": "Gold only", "trigger": "points.standard_added", "tiers": ["gold"],
                      "actions": [{"type": "points.add", "points": 1}]},
        "twice": {"name": "Twice", "trigger": "points.standard_added", "limit_per_member": 2,
                  "actions": [{"type": "tags.add", "field": "seen", "tags": ["x"]}]}})
    world.join("ola")
    for n in range(4):
        world.send("ola", "points.added", points=10, event_id=f"add-{n}")
    assert [e.scenario for e in world.executions("ola")] == ["twice", "twice"]
    assert world.state("ola").executions == {"twice": 2}
    world.send("ola", "purchase", transaction="t1", amount=1000.0)
    assert len(world.executions("ola")) == 2, "filters see the tier the member had when fired"
    world.send("ola", "points.added", points=10, event_id="add-gold")
    assert world.executions("ola")[-1].scenario == "gold-only"


def test_chains_run_scenario_after_scenario_and_a_cycle_is_cut_and_reported():
    world = World({"chain_depth": 3}, scenarios={
        "a": {"name": "A", "trigger": "member.joined",
              "actions": [{"type": "points.add", "points": 1}]},
        "b": {"name": "B", "trigger": "scenario:a",
              "actions": [{"type": "points.add", "points": 10}]},
        "loop": {"name": "Loop", "trigger": "scenario:loop",
                 "actions": [{"type": "points.add", "points": 100}]},
        "start-loop": {"name": "Start", "trigger": "scenario:b",
                       "actions": [{"type": "tags.add", "field": "f", "tags": ["t"]}]}})
    world.join("ola")
    assert [(e.scenario, e.depth) for e in world.executions("ola")] == [
        ("a", 0), ("b", 1), ("start-loop", 2)]
    assert world.state("ola").balance == 11
    world2 = World({"chain_depth": 2}, scenarios={
        "ping": {"name": "Ping", "trigger": "scenario:pong",
                 "actions": [{"type": "points.add", "points": 1}]},
        "pong": {"name": "Pong", "trigger": "scenario:ping",
                 "actions": [{"type": "points.add", "points": 1}]},
        "start": {"name": "Start", "trigger": "member.joined",
                  "actions": [{"type": "points.add", "points": 1}]},
        "kick": {"name": "Kick", "trigger": "scenario:start",
                 "actions": [{"type": "points.add", "points": 1}]}})
    world2.join("ola")
    effects = world2.effects["ola"]
    assert world2.state("ola").balance == 2
    assert not [e for e in effects if isinstance(e, ChainCut)]


def test_a_ping_pong_cycle_stops_at_the_chain_depth_with_a_chain_cut():
    world = World({"chain_depth": 4}, scenarios={
        "ping": {"name": "Ping", "trigger": "member.joined",
                 "actions": [{"type": "points.add", "points": 1}]},
        "pong": {"name": "Pong", "trigger": "scenario:ping",
                 "actions": [{"type": "points.add", "points": 1}]},
        "ping2": {"name": "Ping again", "trigger": "scenario:pong",
                  "actions": [{"type": "points.add", "points": 1}]},
        "pong2": {"name": "Pong again", "trigger": "scenario:ping2",
                  "actions": [{"type": "points.add", "points": 1}]},
        "ping3": {"name": "Ping 3", "trigger": "scenario:pong2",
                  "actions": [{"type": "points.add", "points": 1}]},
        "pong3": {"name": "Pong 3", "trigger": "scenario:ping3",
                  "actions": [{"type": "points.add", "points": 1}]}})
    world.join("ola")
    cuts = [e for e in world.effects["ola"] if isinstance(e, ChainCut)]
    assert world.state("ola").balance == 5
    assert [(c.scenario, c.depth) for c in cuts] == [("ping3", 5)]


def test_every_action_type():
    world = World(rewards={"voucher": {"name": "Voucher", "kind": "digital", "points": 0}},
                  pools={"summer": {"name": "Summer", "kind": "single_use", "codes": ["S1"]}},
                  tiers=TIERS, scenarios={"all": {
                      "name": "All", "trigger": "member.joined", "actions": [
                          {"type": "points.add", "points": 100},
                          {"type": "points.subtract", "percent": 10},
                          {"type": "points.subtract", "points": 5},
                          {"type": "tags.add", "field": "likes", "tags": ["tea", "cake"]},
                          {"type": "tags.remove", "field": "likes", "tags": ["cake"]},
                          {"type": "tier.set", "tier": "silver"},
                          {"type": "message.email", "subject": "Hi", "body": "B {{member.balance}}"},
                          {"type": "message.sms", "body": "sms"},
                          {"type": "message.internal", "body": "inbox"},
                          {"type": "message.push", "title": "T", "body": "P", "target": "/offers"},
                          {"type": "staff.email", "user": "boss", "body": "{{member.id}} joined"},
                          {"type": "webhook", "url": "https://crm.example/hook",
                           "body": {"who": "{{member.id}}"}},
                          {"type": "reward.issue", "reward": "voucher"},
                          {"type": "reward.issue", "pool": "summer"}]}})
    world.join("ola")
    state = world.state("ola")
    assert world.ledger("ola") == [("award", 100), ("deduct", -10), ("deduct", -5)]
    assert state.tags == {"likes": ["tea"]} and state.tier == "silver"
    assert [(m.channel, m.body) for m in world.messages("ola")] == [
        ("email", "B 85"), ("sms", "sms"), ("internal", "inbox"), ("push", "P"),
        ("staff_email", "ola joined")]
    [hook] = [e for e in world.effects["ola"] if isinstance(e, Webhook)]
    assert hook.body == {"who": "ola"} and hook.method == "POST"
    sent = [(e.topic, e.key, e.event["type"]) for e in world.outbox if isinstance(e, SendEvent)]
    assert sent == [("rewards", "voucher", "reward.reserve"), ("pools", "summer", "pool.issue")]


def test_events_of_other_brands_do_not_run_brand_scoped_scenarios():
    world = World(scenarios={"outlet": {"name": "Outlet", "trigger": "member.joined",
                                        "brands": ["outlet"],
                                        "actions": [{"type": "points.add", "points": 5}]}})
    world.apply_document({"id": "j1", "type": "member.joined", "member": "a", "brand": "outlet",
                          "time": "2026-01-01T00:00:00Z", "data": {}})
    world.join("b")
    assert world.state("a").balance == 5 and world.state("b").balance == 0


def test_the_blacklist_refuses_join_and_profile_edit_and_changes_nothing_else():
    world = World(blacklist={"default": {"phones": ["+48 500 100 200"],
                                         "emails": ["Spam@Example.com"]}})
    effects = world.join("x", profile={"email": "spam@example.com"})
    assert [e.reason for e in effects] == ["blacklisted"]
    assert "x" not in world.states
    world.join("ola", profile={"phone": "+48111"})
    world.send("ola", "member.profile_updated", profile={"phone": "+48500100200", "city": "X"})
    assert world.rejections("ola")[0].details[0]["field"] == "data.profile.phone"
    assert world.state("ola").profile == {"phone": "+48111"}


def test_events_for_unknown_members_are_refused_and_an_event_id_applies_once():
    world = World()
    assert [e.reason for e in world.send("ghost", "visit")] == ["member_unknown"]
    world.join("ola")
    first = world.send("ola", "points.added", points=5, event_id="same")
    again = world.send("ola", "points.added", points=5, event_id="same")
    assert first and again == []
    assert world.state("ola").balance == 5


def test_member_delete_keeps_anonymised_totals_and_refuses_later_operations():
    world = World(scenarios={"bye": {"name": "Bye", "trigger": "review.approved",
                                     "actions": [{"type": "member.delete"}]}})
    world.join("ola", profile={"email": "ola@example.com"}, card="C-1")
    world.send("ola", "purchase", transaction="t1", amount=20.0)
    world.send("ola", "review.approved")
    view = world.state("ola").to_view()
    assert (view["status"], view["profile"], view["cards"], view["balance"],
            view["spend_total"]) == ("deleted", {}, [], 20, 20.0)
    world.send("ola", "visit")
    assert world.rejections("ola")[-1].reason == "member_deleted"
