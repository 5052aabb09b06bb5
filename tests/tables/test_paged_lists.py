"""Paged lists: newest-first pages, and appends that a crash cannot duplicate."""

from __future__ import annotations

import orjson

from tables.paged_lists import PagedLists
from tests.tables.memory_store import MemoryStore


def encoded(*numbers: int) -> list[bytes]:
    """List items as the member agent hands them over: encoded JSON."""
    return [orjson.dumps({"n": n}) for n in numbers]


def test_pages_read_newest_first_across_page_boundaries():
    lists = PagedLists(MemoryStore(), "ledger", page_size=3)
    count = 0
    for n in range(7):
        count = lists.append_at("m", encoded(n), count)
    items, total = lists.newest_first("m", offset=1, limit=4, total=count)
    assert total == 7 and [i["n"] for i in items] == [5, 4, 3, 2]


def test_entries_past_the_known_length_are_leftovers_and_are_overwritten():
    """A flush cut short left the pages of events e1..e3 but not the member state that counts
    them: the state still says 1, so the replayed events write from position 1 again."""
    lists = PagedLists(MemoryStore(), "ledger", page_size=2)
    known = lists.append_at("m", encoded(0), 0)
    for n in (1, 2, 3):
        lists.append_at("m", encoded(n), n)          # written, but the state never saw them
    count = known
    for n in (1, 2, 3):                              # the replay, from what the state knows
        count = lists.append_at("m", encoded(n), count)
    items, total = lists.newest_first("m", total=count)
    assert total == 4 and [i["n"] for i in items] == [3, 2, 1, 0]


def test_items_from_a_source_position_already_passed_are_skipped():
    """A scenario's history is fed by every member partition; a member agent that crashed
    sends its executions again, at the same positions."""
    lists = PagedLists(MemoryStore(), "executions", page_size=3)
    assert lists.append_from("s", [(0, 10, 1, b'{"n":0}'), (1, 4, 1, b'{"n":1}')]) == 2
    assert lists.append_from("s", [(0, 10, 1, b'{"n":0}'), (0, 10, 2, b'{"n":2}'),
                                   (1, 4, 1, b'{"n":1}'), (1, 5, 1, b'{"n":3}')]) == 2
    items, total = lists.newest_first("s")
    assert total == 4 and [i["n"] for i in items] == [3, 2, 1, 0]


def test_an_append_cut_short_by_a_crash_is_not_duplicated_when_replayed():
    table = MemoryStore()
    lists = PagedLists(table, "executions", page_size=10)
    lists.append_from("s", [(0, 1, 1, b'{"n":0}')])
    head = table[b"s\0executions\0n"]
    lists.append_from("s", [(0, 2, 1, b'{"n":1}')])
    table[b"s\0executions\0n"] = head      # the crash lost the head write, not the page
    lists.append_from("s", [(0, 2, 1, b'{"n":1}')])    # the execution is sent again
    items, total = lists.newest_first("s")
    assert total == 2 and [i["n"] for i in items] == [1, 0]
    assert table.scan_live(b"s\0executions\0" + b"0\0", bytes) == {
        b"s\0executions\0" + b"0\0" + b"0": b'{"n":0}',
        b"s\0executions\0" + b"0\0" + b"1": b'{"n":1}'}


def test_a_head_of_the_old_layout_keeps_its_count():
    table = MemoryStore()
    lists = PagedLists(table, "executions", page_size=10)
    table[b"s\0executions\0" + b"0"] = b'{"n":0}'
    table[b"s\0executions\0n"] = orjson.dumps({"n": 1, "batches": ["e0"]})
    lists.append_from("s", [(2, 7, 1, b'{"n":1}')])
    items, total = lists.newest_first("s")
    assert total == 2 and [i["n"] for i in items] == [1, 0]


def test_leftovers_inside_a_page_are_overwritten_by_the_next_append_or_never_read():
    table = MemoryStore()
    lists = PagedLists(table, "ledger", page_size=5)
    known = lists.append_at("m", encoded(0), 0)
    lists.append_at("m", encoded(1, 2), known)        # a flush cut short: the state says 1
    assert lists.newest_first("m", total=known) == ([{"n": 0}], 1)
    count = lists.append_at("m", encoded(7), known)
    assert table[b"m\0ledger\0" + b"0\0" + b"1"] == b'{"n":7}'
    assert lists.newest_first("m", total=count) == ([{"n": 7}, {"n": 0}], 2)


def test_an_append_writes_its_items_as_one_run_per_page():
    table = MemoryStore()
    lists = PagedLists(table, "ledger", page_size=4)
    count = lists.append_at("m", encoded(0, 1, 2), 0)
    assert dict(table) == {b"m\0ledger\0" + b"0\0" + b"0": b'{"n":0}\n{"n":1}\n{"n":2}'}
    count = lists.append_at("m", encoded(3, 4, 5, 6, 7, 8, 9), count)
    assert table[b"m\0ledger\0" + b"0\0" + b"3"] == b'{"n":3}'
    assert table[b"m\0ledger\0" + b"1\0" + b"0"] == b'{"n":4}\n{"n":5}\n{"n":6}\n{"n":7}'
    assert table[b"m\0ledger\0" + b"2\0" + b"0"] == b'{"n":8}\n{"n":9}'
    items, total = lists.newest_first("m", offset=1, limit=7, total=count)
    assert total == 10 and [i["n"] for i in items] == [8, 7, 6, 5, 4, 3, 2]


def test_a_leftover_run_starting_inside_a_newer_run_is_skipped():
    """The flush cut short had written the events' entries as runs of 1 and 4 items; replayed
    with another program, they come as 2 and 1: the old run at slot 2 lies inside the new run
    at slot 1, and is not read."""
    table = MemoryStore()
    lists = PagedLists(table, "ledger", page_size=10)
    known = lists.append_at("m", encoded(0), 0)
    lists.append_at("m", encoded(91, 92, 93, 94), lists.append_at("m", encoded(90), known))
    assert table[b"m\0ledger\0" + b"0\0" + b"2"] == b'{"n":91}\n{"n":92}\n{"n":93}\n{"n":94}'
    count = lists.append_at("m", encoded(3), lists.append_at("m", encoded(1, 2), known))
    assert lists.newest_first("m", total=count) == ([{"n": n} for n in (3, 2, 1, 0)], 4)


def test_an_append_writes_the_new_item_and_nothing_else():
    table = MemoryStore()
    lists = PagedLists(table, "ledger", page_size=100)
    count = lists.append_at("m", encoded(*range(50)), 0)
    before = dict(table)
    lists.append_at("m", encoded(50), count)
    assert {k: v for k, v in table.items() if before.get(k) != v} == {
        b"m\0ledger\0" + b"0\0" + b"50": b'{"n":50}'}


def test_a_page_of_the_old_layout_is_read_and_appended_to_in_place():
    """Before item keys, a page was one value: its items' JSON, one per line, maybe followed
    by leftovers of an append cut short. Such a list reads as it is and grows item by item."""
    table = MemoryStore()
    table[b"m\0ledger\0" + b"0"] = b'{"n":0}\n{"n":1}\n{"n":2}'
    table[b"m\0ledger\0" + b"1"] = b'{"n":3}\n{"n":4}\n{"n":99}'   # 99: a leftover
    lists = PagedLists(table, "ledger", page_size=3)
    assert lists.newest_first("m", total=5) == ([{"n": n} for n in (4, 3, 2, 1, 0)], 5)
    count = lists.append_at("m", encoded(5, 6), 5)
    items, total = lists.newest_first("m", total=count)
    assert total == 7 and [i["n"] for i in items] == [6, 5, 4, 3, 2, 1, 0]
