"""The member state: serialisation, copies, bounded history, the idempotency window, and
due times that are recomputed only when something they depend on changes."""

from __future__ import annotations

import ast
from dataclasses import fields

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


def test_a_shorter_stored_list_loads_with_defaults_for_fields_added_since():
    stored = MemberState(id="m", brand="b", joined=1.0).to_bytes()
    shorter = stored[: stored.rindex(b",")] + b"]"
    assert MemberState.from_bytes(shorter).timers_for is None


def test_day_buckets_add_up_stay_sorted_and_forget_days_beyond_the_history():
    buckets: list = []
    for day, amount in ((10, 1.0), (10, 2.0), (12, 5.0), (11, 4.0)):
        bucket_add(buckets, day, amount)
    assert buckets == [[10, 3.0], [11, 4.0], [12, 5.0]]
    assert window_sum(buckets, 12, 2) == 9.0
    bucket_add(buckets, 12 + HISTORY_DAYS, 1.0)
    assert buckets == [[12, 5.0], [12 + HISTORY_DAYS, 1.0]]


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


def test_expiry_lots_are_merged_per_day():
    world = World({"expiry_days": 30})
    world.join("ola")
    for hour in ("08", "12", "18"):
        world.send("ola", "points.added", time=f"2026-03-05T{hour}:00:00Z", points=10)
    assert world.state("ola").lots == [[world.state("ola").lots[0][0], 30]]


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
