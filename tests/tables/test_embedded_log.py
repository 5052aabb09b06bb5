"""The embedded log: offsets, ordering, commits, durability, compaction and retention."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tables import embedded_log
from tables.embedded_log import EmbeddedLog


def reopen(log: EmbeddedLog) -> EmbeddedLog:
    path = log.path
    log.close()
    return EmbeddedLog.open(path)


def test_appends_get_increasing_offsets_and_read_back_in_order(tmp_path):
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("events", 2)
    offsets = [log.append("events", 1, b"M-1", f"e{i}".encode())[0] for i in range(5)]
    assert offsets == [0, 1, 2, 3, 4]
    assert [r.value for r in log.read("events", 1, 0, 100)] == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    assert [r.offset for r in log.read("events", 1, 3, 100)] == [3, 4]
    assert log.read("events", 0, 0, 100) == []
    assert (log.start_offset("events", 1), log.end_offset("events", 1)) == (0, 5)
    log.close()


def test_headers_and_null_keys_and_tombstones_round_trip(tmp_path):
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("t", 1)
    log.append("t", 0, None, None, timestamp_ms=1234, headers=[("trace", b"abc")])
    record = log.read("t", 0, 0, 1)[0]
    assert (record.key, record.value, record.timestamp_ms, record.headers) == (
        None, None, 1234, [("trace", b"abc")])
    log.close()


def test_committed_offsets_and_records_survive_reopen(tmp_path):
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("events", 3)
    for i in range(10):
        log.append("events", i % 3, b"k", str(i).encode())
    log.commit("group", {("events", 0): 2, ("events", 2): 1})
    log = reopen(log)
    assert log.topic("events").partitions == 3
    assert log.committed("group", "events", 0) == 2
    assert log.committed("group", "events", 1) is None
    assert log.committed("other-group", "events", 0) is None
    assert log.end_offset("events", 0) == 4
    assert log.append("events", 0, b"k", b"next")[0] == 4
    log.close()


def test_every_acknowledged_append_survives_kill_9(tmp_path):
    writer = textwrap.dedent(f"""
        import sys
        from tables.embedded_log import EmbeddedLog
        log = EmbeddedLog.open({str(tmp_path)!r})
        log.create_topic("events", 1)
        i = 0
        while True:
            offset, _ = log.append("events", 0, b"k", str(i).encode())
            print(offset, flush=True)
            i += 1
    """)
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    for line in process.stdout:
        acknowledged = int(line)
        if acknowledged >= 5000:
            break
    process.kill()
    process.wait()
    log = EmbeddedLog.open(tmp_path)
    end = log.end_offset("events", 0)
    assert end > acknowledged
    values = [int(r.value) for r in log.read("events", 0, 0, end)]
    assert values == list(range(end))
    log.close()


def test_compaction_keeps_only_the_newest_record_per_key(tmp_path):
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("table-changelog", 1, compacted=True)
    for i in range(100):
        log.append("table-changelog", 0, f"M-{i % 5}".encode(), str(i).encode())
    assert log.compact("table-changelog") == 95
    kept = log.read("table-changelog", 0, 0, 1000)
    assert {r.key: r.value for r in kept} == {f"M-{k}".encode(): str(95 + k).encode()
                                               for k in range(5)}
    assert [r.offset for r in kept] == [95, 96, 97, 98, 99]
    assert log.end_offset("table-changelog", 0) == 100
    assert log.start_offset("table-changelog", 0) == 95
    log = reopen(log)
    assert log.record_count("table-changelog") == 5
    assert log.append("table-changelog", 0, b"M-0", b"new")[0] == 100
    log.close()


def test_maintain_compacts_grown_changelogs_and_applies_retention(tmp_path):
    log = EmbeddedLog.open(tmp_path)
    log.compaction_min_records = 50
    log.create_topic("cl", 1, compacted=True)
    log.create_topic("events", 1, retention_ms=1000)
    for i in range(60):
        log.append("cl", 0, b"same-key", str(i).encode())
    log.append("events", 0, b"k", b"old", timestamp_ms=1_000)
    log.append("events", 0, b"k", b"new", timestamp_ms=10_000)
    removed = log.maintain(now_ms=10_500)
    assert removed == 59 + 1
    assert log.record_count("cl") == 1
    assert [r.value for r in log.read("events", 0, 0, 10)] == [b"new"]
    assert log.start_offset("events", 0) == 1


def test_retention_emptying_a_partition_keeps_its_offsets(tmp_path):
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("events", 1, retention_ms=1)
    for i in range(3):
        log.append("events", 0, b"k", b"v", timestamp_ms=1)
    assert log.apply_retention("events", now_ms=100) == 3
    log = reopen(log)
    assert (log.start_offset("events", 0), log.end_offset("events", 0)) == (3, 3)
    assert log.append("events", 0, b"k", b"v")[0] == 3
    log.close()


def test_retention_deletes_in_small_steps_and_still_keeps_the_offsets(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_log, "STEP_RECORDS", 10)
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("events", 1, retention_ms=1)
    for i in range(25):
        log.append("events", 0, b"k", b"v", timestamp_ms=1)
    steps = list(log.maintenance_steps(now_ms=100))
    assert sum(steps) == 25 and max(steps) == 10
    log = reopen(log)
    assert (log.start_offset("events", 0), log.end_offset("events", 0)) == (25, 25)
    log.close()


def test_reads_at_the_end_of_the_log_match_what_is_on_disk(tmp_path, monkeypatch):
    """The newest records of each partition are kept in memory; whatever the offset, a read
    answers what RocksDB holds."""
    monkeypatch.setattr(embedded_log, "TAIL_RECORDS", 8)
    log = EmbeddedLog.open(tmp_path)
    log.create_topic("events", 2)
    for i in range(50):
        log.append_groups({("events", 0): [(b"k%d" % i, b"v%d" % i, None, [("h", b"1")])],
                           ("events", 1): [(None, b"w%d" % i, 7, []), (None, b"x%d" % i, None, [])]})
    in_memory = {(p, o): log.read("events", p, o, 5) for p in (0, 1) for o in range(0, 110, 3)}
    log = reopen(log)
    on_disk = {(p, o): log.read("events", p, o, 5) for p in (0, 1) for o in range(0, 110, 3)}
    assert in_memory == on_disk
    assert [r.value for r in on_disk[(1, 96)]] == [b"w48", b"x48", b"w49", b"x49"]
    assert on_disk[(0, 48)][0].headers == [("h", b"1")]
    log.close()


def test_maintenance_runs_in_small_steps_with_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded_log, "STEP_RECORDS", 10)
    log = EmbeddedLog.open(tmp_path)
    log.compaction_min_records = 1
    log.create_topic("cl", 2, compacted=True)
    for i in range(100):
        log.append("cl", i % 2, f"M-{i % 6}".encode(), str(i).encode())
    steps = list(log.maintenance_steps())
    assert len(steps) > 10 and sum(steps) == 94
    assert max(steps) == 10  # 47 deletions per partition, written 10 at a time
    kept = log.read("cl", 0, 0, 100) + log.read("cl", 1, 0, 100)
    assert sorted(int(r.value) for r in kept) == [94, 95, 96, 97, 98, 99]
    log.close()


def test_a_large_changelog_is_compacted_when_its_new_records_reach_half_of_it(tmp_path):
    """A compaction reads the whole topic, so it waits for as many new records as half of
    what the topic kept: each record is read a bounded number of times."""
    log = EmbeddedLog.open(tmp_path)
    log.compaction_min_records = 10
    log.create_topic("cl", 1, compacted=True)
    for i in range(100):
        log.append("cl", 0, b"item-%d" % i, b"v")           # keys written once, as list items
    assert log.maintain() == 0 and log.record_count("cl") == 100
    for i in range(49):
        log.append("cl", 0, b"state", b"%d" % i)              # a key rewritten 49 times
    assert log.maintain() == 0 and log.record_count("cl") == 149   # 49 < 100 / 2: not yet
    log.append("cl", 0, b"state", b"49")
    assert log.maintain() == 49 and log.record_count("cl") == 101
    log.close()
