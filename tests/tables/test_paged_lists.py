"""Paged lists: newest-first pages, and appends that a crash cannot duplicate."""

from __future__ import annotations

import orjson

from tables.paged_lists import PagedLists


class MemoryStore(dict):
    """The part of a BatchStore that PagedLists uses, over a dict of raw values."""

    def get_live(self, key, decode):
        raw = self.get(key)
        return None if raw is None else decode(raw)

    def put_live(self, key, value, encode):
        self[key] = encode(value)


def test_pages_read_newest_first_across_page_boundaries():
    lists = PagedLists(MemoryStore(), "ledger", page_size=3)
    for n in range(7):
        lists.append("m", [{"n": n}], f"e{n}")
    items, total = lists.newest_first("m", offset=1, limit=4)
    assert total == 7 and [i["n"] for i in items] == [5, 4, 3, 2]


def test_replaying_an_append_adds_nothing_twice():
    lists = PagedLists(MemoryStore(), "ledger", page_size=3)
    lists.append("m", [{"n": 0}, {"n": 1}], "e0")
    lists.append("m", [{"n": 0}, {"n": 1}], "e0")
    assert lists.newest_first("m")[1] == 2


def test_an_append_cut_short_by_a_crash_is_not_duplicated_when_replayed():
    table = MemoryStore()
    lists = PagedLists(table, "ledger", page_size=10)
    lists.append("m", [{"n": 0}], "e0")
    head = table[b"m\0ledger\0n"]
    lists.append("m", [{"n": 1}], "e1")
    table[b"m\0ledger\0n"] = head          # the crash lost the head write, not the page
    lists.append("m", [{"n": 1}], "e1")    # the event is replayed
    items, total = lists.newest_first("m")
    assert total == 2 and [i["n"] for i in items] == [1, 0]
    assert len(orjson.loads(table[b"m\0ledger\0" + b"0"])) == 2


def test_many_batches_appended_at_once_skip_the_ones_already_there():
    lists = PagedLists(MemoryStore(), "executions", page_size=2, remember=10)
    lists.append("welcome", [{"n": 0}], "x0")
    lists.append_batches("welcome", [("x0", [{"n": 0}]), ("x1", [{"n": 1}]), ("x2", [{"n": 2}])])
    items, total = lists.newest_first("welcome")
    assert total == 3 and [i["n"] for i in items] == [2, 1, 0]
