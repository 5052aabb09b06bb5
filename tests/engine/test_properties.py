"""Properties over random event sequences (hypothesis): the ledger explains the balance,
replays change nothing, the multiplier stays on standard additions, limits hold, and apply is
deterministic."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from engine.apply import apply
from engine.effects import Execution, LedgerEntry
from engine.events import parse_event
from engine.program import compile_program

PROGRAM = compile_program({
    "program": {"default": {"points_per_unit": 1.5, "rounding": "round", "visit_points": 2,
                            "expiry_days": 20, "streak_period": "day",
                            "referral": {"qualify": {"spend": 50}}}},
    "tiers": {"silver": {"name": "Silver", "rank": 1, "metric": "spend_365d", "min": 100,
                         "points_per_unit": 2},
              "gold": {"name": "Gold", "rank": 2, "metric": "points_earned_total", "min": 400}},
    "segments": {"rich": {"name": "Rich", "rule": {"field": "balance", "op": ">=",
                                                   "value": 150}}},
    "triggers": {"rich-in": {"type": "segment_entered", "segment": "rich"},
                 "two": {"type": "visits_in_row", "count": 2},
                 "idle": {"type": "inactivity", "days": 10}},
    "scenarios": {
        "x2": {"name": "x2", "trigger": "points.standard_added", "limit_per_member": 3,
               "actions": [{"type": "points.multiply", "percent": 50}]},
        "rich": {"name": "Rich", "trigger": "rich-in", "limit_per_member": 1,
                 "actions": [{"type": "points.add", "points": 25}]},
        "streak": {"name": "Streak", "trigger": "two",
                   "actions": [{"type": "points.subtract", "percent": 10}]},
        "idle": {"name": "Idle", "trigger": "idle",
                 "actions": [{"type": "points.subtract", "points": 5}]}}})
LIMITS = {"x2": 3, "rich": 1}

DAY = 86400
START = 1_772_000_000


@st.composite
def event_documents(draw):
    kinds = st.sampled_from(["purchase", "purchase", "visit", "return", "points.added",
                             "points.subtracted", "timer"])
    documents = [{"id": "join", "type": "member.joined", "member": "m",
                  "time": START, "data": {}}]
    time = START
    for n in range(draw(st.integers(1, 40))):
        time += draw(st.integers(0, 4 * DAY))
        kind = draw(kinds)
        data: dict = {}
        if kind == "purchase":
            data = {"transaction": f"t{n}", "amount": draw(st.floats(0, 300).map(
                lambda x: round(x, 2)))}
        elif kind == "return":
            earlier = [d for d in documents if d["type"] == "purchase"]
            if not earlier:
                continue
            bought = draw(st.sampled_from(earlier))["data"]
            data = {"transaction": bought["transaction"],
                    "amount": max(0.01, round(bought["amount"] * draw(st.floats(0, 0.6)), 2))}
        elif kind in ("points.added", "points.subtracted"):
            data = {"points": draw(st.integers(1, 120))}
        elif kind == "timer":
            data = {"kind": "any"}
        documents.append({"id": f"e{n}", "type": kind, "member": "m", "time": time,
                          "data": data})
    return documents


def run(documents: list[dict], state=None):
    effects = []
    for document in documents:
        doc = dict(document, time=_iso(document["time"]))
        event = parse_event(doc, document["time"])
        result = apply(state, event, PROGRAM, document["time"])
        state = result.state
        effects.extend(result.effects)
    return state, effects


def _iso(epoch: int) -> str:
    from engine.events import iso
    return iso(epoch)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(event_documents())
def test_the_balance_always_equals_the_sum_of_the_ledger(documents):
    state, effects = run(documents)
    entries = [e for e in effects if isinstance(e, LedgerEntry)]
    assert state.balance == sum(e.points for e in entries)
    assert state.balance >= 0
    running = 0
    for entry in entries:
        running += entry.points
        assert entry.balance == running


@SETTINGS
@given(event_documents(), st.data())
def test_replaying_any_prefix_again_changes_nothing(documents, data):
    state, _ = run(documents)
    cut = data.draw(st.integers(1, len(documents)))
    replayed, effects = run(documents[:cut], state)
    assert effects == []
    assert replayed.to_bytes() == state.to_bytes()


@SETTINGS
@given(event_documents())
def test_the_multiplier_only_follows_standard_additions(documents):
    _, effects = run(documents)
    for index, effect in enumerate(effects):
        if isinstance(effect, LedgerEntry) and effect.kind == "bonus":
            base = [e for e in effects[:index] if isinstance(e, LedgerEntry)][-1]
            assert base.kind == "earn" and base.points > 0 and base.event == effect.event


@SETTINGS
@given(event_documents())
def test_no_scenario_exceeds_its_per_member_limit(documents):
    state, effects = run(documents)
    runs: dict[str, int] = {}
    for effect in effects:
        if isinstance(effect, Execution):
            runs[effect.scenario] = runs.get(effect.scenario, 0) + 1
    for scenario, limit in LIMITS.items():
        assert runs.get(scenario, 0) <= limit
    assert {k: v for k, v in state.executions.items()} == runs


@SETTINGS
@given(event_documents())
def test_apply_is_deterministic(documents):
    first_state, first_effects = run(documents)
    second_state, second_effects = run(documents)
    assert first_effects == second_effects
    assert first_state.to_bytes() == second_state.to_bytes()


@SETTINGS
@given(event_documents())
def test_apply_never_changes_the_state_it_is_given(documents):
    state = None
    for document in documents:
        event = parse_event(dict(document, time=_iso(document["time"])), document["time"])
        before = None if state is None else state.to_bytes()
        result = apply(state, event, PROGRAM, document["time"])
        assert (None if state is None else state.to_bytes()) == before
        state = result.state
