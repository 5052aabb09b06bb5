"""Side agents keep their answers in a window of keys (tables/recent_answers.py); a state
written before that moves its answers there when it is first read again."""

from __future__ import annotations

from agents.side_agents import ANSWERS_NEXT, answers_of
from engine.program import compile_program
from engine import side
from engine.side import apply_pool
from tests.tables.memory_store import MemoryStore


def test_a_pool_state_of_the_old_layout_keeps_its_issued_codes():
    program = compile_program({"pools": {"p": {"name": "P", "kind": "single_use",
                                               "codes": ["A", "B"]}}})
    store = MemoryStore()
    old_state = {"available": ["B"], "known": 2, "issued": {"r1": "A"}, "dry": False,
                 "batches": []}
    answers = answers_of(store, "pools", b"p", old_state)
    assert "issued" not in old_state and answers.next == 2
    replay = {"id": "r1", "type": "pool.issue", "member": "p",
              "data": {"request": "r1", "pool": "p", "member": "m1"}}
    state, [reply] = apply_pool(old_state, replay, program, answers)
    assert reply.event["data"]["code"] == "A" and state["available"] == ["B"]
    added_again = {"id": "add-1", "type": "pool.codes_added", "member": "p",
                   "data": {"pool": "p", "codes": ["A", "C"]}}
    state, _ = apply_pool(state, added_again, program, answers)
    assert state["available"] == ["B", "C"], "an issued code is not added back"


def test_answers_survive_a_new_read_through_the_stored_next():
    program = compile_program({"pools": {"p": {"name": "P", "kind": "single_use",
                                               "codes": ["A", "B"]}}})
    store = MemoryStore()
    issue = {"id": "r1", "type": "pool.issue", "member": "p",
             "data": {"request": "r1", "pool": "p", "member": "m1"}}
    answers = answers_of(store, "pools", b"p", None)
    state, [first] = apply_pool(None, issue, program, answers)
    state[ANSWERS_NEXT] = answers.next
    again = answers_of(store, "pools", b"p", state)
    state, [second] = apply_pool(state, issue, program, again)
    assert first.event == second.event and state["available"] == ["B"]


def test_a_pool_remembers_as_many_requests_as_the_other_side_agents(monkeypatch):
    """A single-use issue keeps two answers (the request's code, the code's request); the
    oldest of REMEMBERED_REQUESTS requests still gets its code back when replayed."""
    monkeypatch.setattr(side, "REMEMBERED_REQUESTS", 3)
    program = compile_program({"pools": {"p": {"name": "P", "kind": "single_use",
                                               "codes": ["A", "B", "C", "D"]}}})
    store = MemoryStore()
    state = None

    def issue(n: int):
        nonlocal state
        answers = answers_of(store, "pools", b"p", state)
        state, [reply] = apply_pool(state, {
            "id": f"r{n}", "type": "pool.issue", "member": "p",
            "data": {"request": f"r{n}", "pool": "p", "member": f"m{n}"}}, program, answers)
        state[ANSWERS_NEXT] = answers.next
        return reply.event["data"]["code"]

    assert [issue(1), issue(2), issue(3)] == ["A", "B", "C"]
    assert issue(1) == "A" and state["available"] == ["D"]
