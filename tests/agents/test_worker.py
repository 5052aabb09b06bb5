"""The worker end to end, in both runtime modes: ingest, process, restart, kill -9, query."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from tables.embedded_log import EmbeddedLog
from tests.support import wait_until

#: These tests prove the plumbing with the minimal counter agent (agents/counter.py).
MINIMAL = {"TILLSTREAM_PIPELINE": "minimal"}

pytestmark = pytest.mark.slow


def purchases(n: int, members: int, start: int = 0) -> list[dict]:
    return [{"id": f"e-{i}", "type": "purchase", "member": f"M-{i % members}",
             "data": {"amount": 1.0, "seq": i}} for i in range(start, start + n)]


def post_all(worker, events: list[dict], batch: int = 500) -> None:
    for i in range(0, len(events), batch):
        status, body = worker.post("/v1/counters", {"events": events[i:i + batch]})
        assert status == 202, body


def expected_counts(events: list[dict]) -> Counter:
    return Counter(e["member"] for e in events)


def counts_match(worker, expected: Counter) -> bool:
    for member, count in expected.items():
        status, body = worker.get(f"/v1/counters/{member}")
        if status != 200 or body["count"] != count:
            return False
    return True


def assert_counts(worker, expected: Counter) -> None:
    for member, count in expected.items():
        status, body = worker.get(f"/v1/counters/{member}")
        assert status == 200, body
        assert (body["count"], body["amount"]) == (count, float(count)), member


def test_ready_and_health(worker_factory, mode):
    worker = worker_factory(mode, env=MINIMAL).start()
    assert worker.get("/healthz") == (200, {"status": "ok"})
    status, body = worker.get("/readyz")
    assert status == 200
    events_topic = next(t for t in body["assigned"] if t.endswith("-events"))
    assert body["assigned"][events_topic] == [0, 1, 2, 3]


def test_unknown_member_is_404(worker_factory):
    worker = worker_factory("embedded", env=MINIMAL).start()
    assert worker.get("/v1/counters/nobody")[0] == 404


def test_restart_loses_nothing_and_doubles_nothing(worker_factory, mode):
    worker = worker_factory(mode, env=MINIMAL).start()
    first = purchases(400, members=20)
    post_all(worker, first)
    wait_until(lambda: counts_match(worker, expected_counts(first)), 60, message="first batch")
    worker.stop()
    worker.start()
    assert_counts(worker, expected_counts(first))
    second = purchases(400, members=20, start=400)
    post_all(worker, second)
    total = expected_counts(first + second)
    wait_until(lambda: counts_match(worker, total), 60, message="second batch")
    assert_counts(worker, total)


def test_kill_9_mid_stream_then_restart(worker_factory, mode):
    worker = worker_factory(mode, env=MINIMAL).start()
    events = purchases(3000, members=50)
    post_all(worker, events)
    wait_until(lambda: worker.get("/v1/counters/M-0")[0] == 200, 30, message="processing started")
    worker.kill()
    worker.start()
    expected = expected_counts(events)
    wait_until(lambda: counts_match(worker, expected), 120, message="all events after kill -9")
    assert_counts(worker, expected)


def test_records_of_a_partition_come_back_in_the_order_sent(worker_factory):
    worker = worker_factory("embedded", env=MINIMAL).start()
    events = purchases(200, members=3)
    post_all(worker, events, batch=50)
    worker.stop()
    log = EmbeddedLog.open(worker.data_dir / "log")
    topic = next(t for t in log.topics() if t.endswith("-events"))
    seen: dict[str, list[int]] = {}
    for partition in range(log.topic(topic).partitions):
        records = log.read(topic, partition, 0, 10_000)
        assert [r.offset for r in records] == list(range(len(records)))
        for record in records:
            seen.setdefault(record.key.decode(), []).append(
                __import__("orjson").loads(record.value)["data"]["seq"])
    log.close()
    assert seen == {m: [e["data"]["seq"] for e in events if e["member"] == m]
                    for m in ("M-0", "M-1", "M-2")}


def test_table_recovers_from_a_compacted_changelog(worker_factory):
    worker = worker_factory("embedded", env=MINIMAL).start()
    events = purchases(500, members=5)
    for start in range(0, 500, 50):  # ten batches: each flush writes every member again
        post_all(worker, events[start:start + 50])
        wait_until(lambda: counts_match(worker, expected_counts(events[:start + 50])), 60,
                   message="processing")
    expected = expected_counts(events)
    worker.stop()
    log = EmbeddedLog.open(worker.data_dir / "log")
    changelog = next(t for t in log.topics() if t.endswith("-changelog"))
    assert log.record_count(changelog) >= 50
    log.compact(changelog)
    assert log.record_count(changelog) == 5
    log.close()
    for table_dir in worker.data_dir.glob("**/tables"):
        shutil.rmtree(table_dir)
    worker.start()
    assert_counts(worker, expected)
