"""A compaction's scan in a process of its own: it reads the log the worker holds open (a
RocksDB secondary instance), the worker deletes what it found, and a failed scan leaves the
worker to compact by itself."""

from __future__ import annotations

import asyncio
import logging

from tables.compaction_scan import scan_elsewhere
from tables.embedded_log import EmbeddedLog


def values(log: EmbeddedLog, topic: str) -> dict[int, list[bytes]]:
    return {partition: [record.value for record in log.read(topic, partition, 0, 1000)]
            for partition in range(log.topic(topic).partitions)}


def test_the_scan_of_another_process_finds_what_the_worker_then_deletes(tmp_path):
    log = EmbeddedLog.open(tmp_path / "log")
    log.create_topic("members-changelog", 2, compacted=True)
    for version in range(3):
        for member in ("ann", "bob", "cid"):
            partition = 0 if member == "bob" else 1
            log.append("members-changelog", partition, member.encode(),
                       f"{member}-{version}".encode())
    ends, appended = log.compaction_snapshot("members-changelog")
    assert ends == {0: 3, 1: 6} and appended == 9

    stale = asyncio.run(scan_elsewhere(log.path, "members-changelog", ends))
    log.append("members-changelog", 1, b"ann", b"ann-3")   # written while the scan ran
    removed = sum(log.delete_stale_steps("members-changelog", stale, appended))

    assert removed == 6
    assert values(log, "members-changelog") == {0: [b"bob-2"],
                                                1: [b"ann-2", b"cid-2", b"ann-3"]}
    assert log.start_offset("members-changelog", 0) == 2
    # the record written during the scan counts toward the next compaction
    assert log.compaction_snapshot("members-changelog")[1] == 1

    ends, appended = log.compaction_snapshot("members-changelog")
    stale = asyncio.run(scan_elsewhere(log.path, "members-changelog", ends))
    assert sum(log.delete_stale_steps("members-changelog", stale, appended)) == 1
    assert values(log, "members-changelog")[1] == [b"cid-2", b"ann-3"]
    # each scan opens a secondary instance, which starts an info log: old ones do not pile up
    reader_dir = tmp_path / "log-compaction-reader"
    assert len(list(reader_dir.glob("LOG.old.*"))) <= 1
    log.close()


def test_a_scan_that_fails_answers_none_and_says_why(tmp_path, caplog):
    log = EmbeddedLog.open(tmp_path / "log")
    log.create_topic("members-changelog", 1, compacted=True)
    with caplog.at_level(logging.WARNING, logger="tables.compaction_scan"):
        stale = asyncio.run(scan_elsewhere(tmp_path / "not-a-log", "members-changelog", {0: 1}))
    assert stale is None
    assert "compaction scan of members-changelog failed" in caplog.text
    log.close()
