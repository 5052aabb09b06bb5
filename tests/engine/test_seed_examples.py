"""The examples of the source documents (../shared/seeds), each as one readable case."""

from __future__ import annotations

from tests.engine.driver import World


def test_seed_000_referral_10_points_on_sign_up_then_20_when_the_friend_spends_200():
    world = World(
        {"points_per_unit": 0, "referral": {"qualify": {"spend": 200}}},
        scenarios={
            "friend-joined": {"name": "Referral registered", "trigger": "referral.made",
                              "actions": [{"type": "points.add", "points": 10}]},
            "friend-bought": {"name": "Successful referral", "trigger": "referral.qualified",
                              "actions": [{"type": "points.add", "points": 20}]}})
    world.join("anna")
    world.join("bob", referrer="anna")
    assert world.state("anna").balance == 10
    world.send("bob", "purchase", transaction="t1", amount=150.0)
    assert world.state("anna").balance == 10
    world.send("bob", "purchase", transaction="t2", amount=50.0)
    assert world.state("anna").balance == 30
    world.send("bob", "purchase", transaction="t3", amount=500.0)
    assert world.state("anna").balance == 30, "qualified once per referred member, ever"
    assert world.ledger("anna") == [("award", 10), ("award", 20)]
    assert world.state("anna").referred == 1 and world.state("anna").qualified == 1


def test_seed_000_referral_registered_fires_on_the_new_members_own_account():
    world = World(scenarios={"welcome-referred": {
        "name": "Welcome", "trigger": "referral.registered",
        "actions": [{"type": "points.add", "points": 5}]}})
    world.join("anna")
    world.join("bob", referrer="anna")
    assert world.state("bob").balance == 5
    assert world.state("anna").balance == 0


def test_seed_000_three_visits_in_a_row_give_a_bonus_and_a_thank_you_message():
    world = World({"streak_period": "day"},
                  triggers={"three": {"type": "visits_in_row", "count": 3}},
                  scenarios={"streak": {"name": "3 in a row", "trigger": "three", "actions": [
                      {"type": "points.add", "points": 50},
                      {"type": "message.internal", "body": "Thanks {{member.id}}!"}]}})
    world.join("ola")
    world.send("ola", "visit", time="2026-05-01T10:00:00Z", store="S1")
    world.send("ola", "visit", time="2026-05-02T18:00:00Z", store="S1")
    world.send("ola", "visit", time="2026-05-02T19:00:00Z", store="S2")
    assert world.state("ola").balance == 0
    world.send("ola", "visit", time="2026-05-03T09:00:00Z", store="S1")
    assert world.state("ola").balance == 50
    assert [m.body for m in world.messages("ola")] == ["Thanks ola!"]


def test_a_missed_day_resets_the_streak():
    world = World({"streak_period": "day"})
    world.join("ola")
    for day in ("01", "02", "04", "05"):
        world.send("ola", "visit", time=f"2026-05-{day}T10:00:00Z")
    state = world.state("ola")
    assert (state.streak_current, state.streak_best) == (2, 2)


def test_seed_000_entering_the_vip_segment_sends_a_message():
    world = World({"points_per_unit": 1},
                  segments={"vip": {"name": "VIP", "rule": {
                      "field": "balance", "op": ">=", "value": 500}}},
                  triggers={"vip-in": {"type": "segment_entered", "segment": "vip"}},
                  scenarios={"hello-vip": {"name": "Hello VIP", "trigger": "vip-in", "actions": [
                      {"type": "message.email", "subject": "VIP",
                       "body": "Welcome, {{member.profile.first_name}}"}]}})
    world.join("ola", profile={"first_name": "Ola"})
    world.send("ola", "purchase", transaction="t1", amount=499.0)
    assert world.messages("ola") == []
    world.send("ola", "purchase", transaction="t2", amount=1.0)
    assert world.state("ola").segments == ["vip"]
    assert [(m.channel, m.body) for m in world.messages("ola")] == [("email", "Welcome, Ola")]
    world.send("ola", "purchase", transaction="t3", amount=10.0)
    assert len(world.messages("ola")) == 1, "entering fires once, staying does not"


def test_seed_000_phone_changed_sends_a_confirmation_email():
    world = World(triggers={"phone": {"type": "profile_edited", "fields": ["phone"]}},
                  scenarios={"confirm": {"name": "Confirm", "trigger": "phone", "actions": [
                      {"type": "message.email", "subject": "Confirm",
                       "body": "Is {{member.profile.phone}} your number?"}]}})
    world.join("ola", profile={"phone": "+48500000001"})
    world.send("ola", "member.profile_updated", profile={"city": "Gdańsk"})
    world.send("ola", "member.profile_updated", profile={"phone": "+48500000001"})
    assert world.messages("ola") == []
    world.send("ola", "member.profile_updated", profile={"phone": "+48500000002"})
    assert [m.body for m in world.messages("ola")] == ["Is +48500000002 your number?"]


def test_seed_000_inactive_for_24_months_the_account_is_deleted():
    world = World(triggers={"inactive": {"type": "inactivity", "days": 730}},
                  scenarios={"delete": {"name": "Delete", "trigger": "inactive",
                                        "actions": [{"type": "member.delete"}]}})
    world.join("jan", time="2024-01-10T12:00:00Z", profile={"email": "jan@example.com"})
    world.send("jan", "points.added", time="2024-01-10T12:00:00Z", points=40)
    assert world.state("jan").due[0][1] == "inactivity"
    world.fire_timers("jan", until="2026-01-09T00:00:00Z")
    assert world.state("jan").status == "active"
    world.fire_timers("jan", until="2026-01-10T12:00:00Z")
    state = world.state("jan")
    assert state.status == "deleted" and state.profile == {}
    assert state.balance == 40 and world.ledger("jan") == [("earn", 40)]


def test_seed_000_100_spent_with_the_multiplier_at_200_percent_gives_entries_100_and_200():
    world = World({"points_per_unit": 1},
                  scenarios={"x2": {"name": "Multiplier", "trigger": "points.standard_added",
                                    "actions": [{"type": "points.multiply", "percent": 200}]}})
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=100.0)
    assert world.ledger("ola") == [("earn", 100), ("bonus", 200)]
    assert world.state("ola").balance == 300


def test_seed_002_double_points_in_march_is_inactive_on_the_first_of_april():
    world = World({"points_per_unit": 1}, scenarios={"march": {
        "name": "Double points in March", "trigger": "points.standard_added",
        "window": {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"},
        "actions": [{"type": "points.multiply", "percent": 100}]}})
    world.join("ola", time="2026-02-01T00:00:00Z")
    world.send("ola", "purchase", time="2026-03-31T23:59:00Z", transaction="t1", amount=10.0)
    world.send("ola", "purchase", time="2026-04-01T00:00:00Z", transaction="t2", amount=10.0)
    assert world.ledger("ola") == [("earn", 10), ("bonus", 10), ("earn", 10)]
