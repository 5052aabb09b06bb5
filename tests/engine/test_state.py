"""The member state: serialisation, copies, bounded history, the idempotency window, and
due times that are recomputed only when something they depend on changes."""

from __future__ import annotations

import ast
from dataclasses import fields

import orjson

from engine import SOURCES
from engine.effects import TimersChanged
from engine.state import (COPIED, HISTORY_DAYS, MAX_TRANSACTIONS, SEEN_CHARS, MemberState,
                          bucket_add, window_sum)
from tests.engine.driver import World


def _declared_types() -> dict[str, str]:
    """The fields' types as written in engine/state.py (compiled, the class keeps only
    ``type`` for an optional one)."""
    module = ast.parse((SOURCES / "state.py").read_text())
    body = next(node for node in module.body
                if isinstance(node, ast.ClassDef) and node.name == "MemberState").body
    return {node.target.id: ast.unparse(node.annotation) for node in body
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}


def _distinct_state() -> MemberState:
    """A state whose every field holds a value different from every other field's."""
    values: dict = {}
    declared = _declared_types()
    for number, item in enumerate(fields(MemberState)):
        kind = declared[item.name]
        if kind == "dict":
            values[item.name] = {f"k{number}": number}
        elif kind == "list":
            values[item.name] = [number]
        elif item.name == "seen":
            values[item.name] = f"\nid{number}\n"
        elif kind in ("float", "float | None", "int", "int | None"):
            values[item.name] = number + 0.5 if "float" in kind else number
        elif kind == "bool":
            values[item.name] = True
        else:
            values[item.name] = f"v{number}"
    return MemberState(**values)


def test_bytes_and_clone_keep_every_field_in_its_place():
    state = _distinct_state()
    assert MemberState.from_bytes(state.to_bytes()) == state
    assert state.clone() == state


def test_a_clone_shares_its_containers_and_apply_copies_one_before_changing_it():
    state = _distinct_state()
    copy = state.clone()
    for name in COPIED:
        assert getattr(copy, name) is getattr(state, name)
    world = World({"expiry_days": 30, "visit_points": 1, "pending_days": 2},
                  scenarios={"x2": {"name": "x2", "trigger": "points.standard_added",
                                    "actions": [{"type": "points.multiply", "percent": 50}]}})
    world.join("ola")
    world.send("ola", "purchase", transaction="t1", amount=10.0)
    before = world.state("ola")
    saved = {name: repr(getattr(before, name)) for name in COPIED}
    world.send("ola", "visit", time="2026-03-06T10:00:00Z")
    world.send("ola", "purchase", time="2026-03-06T11:00:00Z", transaction="t2", amount=20.0)
    world.send("ola", "return", time="2026-03-06T12:00:00Z", transaction="t1", amount=5.0)
    world.fire_timers("ola", "2026-05-01T00:00:00Z")
    after = world.state("ola")
    assert {name: repr(getattr(before, name)) for name in COPIED} == saved
    changed = [name for name in COPIED if getattr(after, name) != getattr(before, name)]
    assert {"pending", "transactions", "executions", "spend_days", "visit_days"} <= set(changed)
    assert all(getattr(after, name) is not getattr(before, name) for name in changed)


def test_a_state_stored_in_the_first_layout_loads_upgraded_and_keeps_working():
    """Before ``layout`` (2026-12-01) lots and day buckets were lists of pairs and kept
    purchases lists of fields; such a state, shorter by the fields added since, loads in the
    current layout with defaults for those fields."""
    world = World({"expiry_days": 30})
    world.join("ola")
    world.send("ola", "purchase", time="2026-03-05T10:00:00Z", transaction="t1", amount=40.0)
    world.send("ola", "visit", time="2026-03-06T10:00:00Z")
    current = world.state("ola")
    first_layout = orjson.loads(current.to_bytes())[:-2]       # without timers_for and layout
    names = [f.name for f in fields(MemberState)]
    for name in ("lots", "spend_days", "earned_days", "visit_days"):
        flat = first_layout[names.index(name)]
        first_layout[names.index(name)] = [flat[i:i + 2] for i in range(0, len(flat), 2)]
    index = names.index("transactions")
    first_layout[index] = {tx: orjson.loads(record)
                           for tx, record in first_layout[index].items()}
    assert first_layout[index]["t1"][1:] == [40.0, 40, 0.0, 0, False]
    loaded = MemberState.from_bytes(orjson.dumps(first_layout))
    assert loaded.lots == current.lots and loaded.spend_days == current.spend_days
    assert loaded.transactions == current.transactions
    assert (loaded.timers_for, loaded.layout) == (None, 2)
    world.states["ola"] = loaded
    world.send("ola", "return", time="2026-03-07T10:00:00Z", transaction="t1", amount=20.0)
    assert world.ledger("ola")[-1] == ("reversal", -20)


def test_day_buckets_add_up_stay_sorted_and_forget_days_beyond_the_history():
    buckets: list = []
    for day, amount in ((10, 1.0), (10, 2.0), (12, 5.0), (11, 4.0)):
        bucket_add(buckets, day, amount)
    assert buckets == [10, 3.0, 11, 4.0, 12, 5.0]
    assert window_sum(buckets, 12, 2) == 9.0
    bucket_add(buckets, 12 + HISTORY_DAYS, 1.0)
    assert buckets == [12, 5.0, 12 + HISTORY_DAYS, 1.0]


def test_transactions_kept_for_returns_are_bounded():
    world = World()
    world.join("ola")
    for n in range(MAX_TRANSACTIONS + 5):
        world.send("ola", "purchase", transaction=f"t{n}", amount=1.0)
    state = world.state("ola")
    assert len(state.transactions) == MAX_TRANSACTIONS
    assert "t0" not in state.transactions
    world.send("ola", "return", transaction="t0", amount=1.0)
    assert world.rejections("ola")[-1].reason == "unknown_transaction"


def test_expiry_lots_are_merged_per_day_and_kept_oldest_first():
    world = World({"expiry_days": 30})
    world.join("ola")
    for hour in ("08", "12", "18"):
        world.send("ola", "points.added", time=f"2026-03-05T{hour}:00:00Z", points=10)
    march_5 = world.state("ola").lots[0]
    assert world.state("ola").lots == [march_5, 30]
    world.send("ola", "points.added", time="2026-03-07T08:00:00Z", points=7)
    world.send("ola", "points.added", time="2026-03-04T08:00:00Z", points=4)   # late
    world.send("ola", "points.added", time="2026-03-05T20:00:00Z", points=5)   # late, same day
    assert world.state("ola").lots == [march_5 - 86400, 4, march_5, 35, march_5 + 2 * 86400, 7]
    world.send("ola", "points.subtracted", time="2026-03-08T08:00:00Z", points=20)
    assert world.state("ola").lots == [march_5, 19, march_5 + 2 * 86400, 7]


def test_the_idempotency_window_is_bounded_and_remembers_the_latest_ids():
    world = World()
    world.join("ola")
    for n in range(400):
        world.send("ola", "visit", event_id=f"visit-{n:04d}")
    state = world.state("ola")
    assert len(state.seen) <= SEEN_CHARS and state.seen.startswith("\n")
    assert "\nvisit-0399\n" in state.seen and "\nvisit-0000\n" not in state.seen
    assert world.send("ola", "visit", event_id="visit-0399") == []


def test_an_activity_does_not_rewrite_the_inactivity_timer_until_it_fires():
    world = World(triggers={"idle": {"type": "inactivity", "days": 30}},
                  scenarios={"nudge": {"name": "Nudge", "trigger": "idle", "actions": [
                      {"type": "message.email", "subject": "Miss you", "body": "Come back"}]}})
    world.join("ola", time="2026-03-01T10:00:00Z")
    first = world.state("ola").due
    effects = world.send("ola", "visit", time="2026-03-20T10:00:00Z")
    assert not [e for e in effects if isinstance(e, TimersChanged)]
    world.fire_timers("ola", until="2026-03-31T10:00:00Z")
    assert world.messages("ola") == [], "fired early, found the member active, re-armed"
    assert world.state("ola").due != first
    world.fire_timers("ola", until="2026-04-19T10:00:00Z")
    assert [m.subject for m in world.messages("ola")] == ["Miss you"]


def test_a_program_change_of_time_triggers_reschedules_a_member_on_its_next_event():
    world = World()
    world.join("ola", time="2026-03-01T10:00:00Z", profile={"birthday": "1990-06-15"})
    assert world.state("ola").due == []
    world.program = World(triggers={"bday": {"type": "birthday", "hour": 9}}).program
    world.send("ola", "visit", time="2026-03-02T10:00:00Z")
    assert [kind for _, kind in world.state("ola").due] == ["birthday"]
