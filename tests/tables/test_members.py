"""The member store: a state records how long its lists are, so list entries left by a flush
cut short are overwritten when their events are applied again."""

from __future__ import annotations

from engine.state import MemberState
from tables import members
from tables.members import MemberStore
from tests.tables.test_batch_store import FakeLog, FakeTable, fake_app


def member_store(tmp_path) -> MemberStore:
    store = MemberStore(fake_app(FakeTable(tmp_path), FakeLog()))
    store.store.use_partition(0)
    return store


def test_state_and_list_lengths_travel_together(tmp_path):
    store = member_store(tmp_path)
    state = MemberState(id="m1", brand="default", joined=0.0)
    store.record("m1", None, state, [b'{"id":"e1:earn"}'], [b'{"id":"e1:mail"}'], [])
    stored = store.get_stored("m1")
    assert stored.state.id == "m1" and stored.counts == (1, 1, 0)
    assert store.get("m1").id == "m1"


def test_entries_of_a_cut_flush_are_not_listed_twice_after_the_replay(tmp_path):
    store = member_store(tmp_path)
    state = MemberState(id="m1", brand="default", joined=0.0)
    store.record("m1", None, state, [b'{"id":"e1:earn"}'], [], [])
    before_e2 = store.get_stored("m1")
    store.record("m1", before_e2, state, [b'{"id":"e2:earn"}'], [], [])
    # The changelog got e2's ledger page but not the state that counts it:
    store.store[b"m1"] = members.encode_stored(before_e2)
    store.record("m1", store.get_stored("m1"), state, [b'{"id":"e2:earn"}'], [], [])
    items, total = store.newest_first(store.ledger, "m1", 0, 50)
    assert total == 2 and [i["id"] for i in items] == ["e2:earn", "e1:earn"]
