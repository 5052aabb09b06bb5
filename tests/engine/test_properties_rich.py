"""The same properties under the benchmark's program (20 scenarios with every kind of action,
8 segments, 4 tiers, time triggers) and every kind of member event, timers included. Several
multiplier scenarios may follow one base entry, each with its own ``bonus`` entry."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from bench.engine_apply import PROGRAM as DOCUMENTS
from engine.apply import apply
from engine.effects import LedgerEntry
from engine.events import iso, parse_event
from engine.program import compile_program

PROGRAM = compile_program({**DOCUMENTS, "triggers": {
    **DOCUMENTS["triggers"], "spring": {"type": "date", "day": 1, "months": [3, 4]}}})
START = 1_772_000_000
DAY = 86400


@st.composite
def histories(draw):
    documents = [{"id": "join", "type": "member.joined", "member": "m", "time": START,
                  "data": {"profile": {"birthday": "1990-03-10", "city": "Warsaw"}}}]
    time = START
    for n in range(draw(st.integers(1, 20))):
        time += draw(st.integers(0, 20 * DAY))
        kind = draw(st.sampled_from(["purchase", "purchase", "visit", "web.activity",
                                     "points.added", "points.subtracted", "timer",
                                     "member.profile_updated", "member.consent_changed",
                                     "review.approved", "member.activated"]))
        data = {
            "purchase": lambda: {"transaction": f"t{n}",
                                 "amount": draw(st.integers(0, 3000)) / 2},
            "visit": lambda: {"store": "S1"},
            "web.activity": lambda: {"action": "like"},
            "points.added": lambda: {"points": draw(st.integers(1, 900))},
            "points.subtracted": lambda: {"points": draw(st.integers(1, 900))},
            "timer": lambda: {"kind": "any"},
            "member.profile_updated": lambda: {"profile": {"phone": f"+4850{n}"}},
            "member.consent_changed": lambda: {
                "consent": "newsletter",
                "status": draw(st.sampled_from(["granted", "withdrawn"]))},
        }.get(kind, dict)()
        documents.append({"id": f"e{n}", "type": kind, "member": "m", "time": time,
                          "data": data})
    return documents


def run(documents):
    state, effects = None, []
    for document in documents:
        event = parse_event(dict(document, time=iso(document["time"])), document["time"])
        before = None if state is None else state.to_bytes()
        result = apply(state, event, PROGRAM, document["time"])
        assert (None if state is None else state.to_bytes()) == before, "input changed"
        state = result.state
        effects.extend(result.effects)
    return state, effects


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(histories())
def test_apply_is_pure_deterministic_and_the_ledger_explains_the_balance(documents):
    state, effects = run(documents)
    again, effects_again = run(documents)
    assert effects == effects_again and state.to_bytes() == again.to_bytes()
    entries = [e for e in effects if isinstance(e, LedgerEntry)]
    assert state.balance == sum(e.points for e in entries) >= 0
    for index, entry in enumerate(entries):
        if entry.kind == "bonus":
            base = next(e for e in reversed(entries[:index]) if e.kind != "bonus")
            assert base.kind == "earn" and base.points > 0 and base.event == entry.event
