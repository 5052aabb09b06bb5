"""Failure drills: kill -9 mid-stream, a worker leaving the group, poison records.

After every drill, each member's balance and ledger must equal a clean, in-process replay of
the same events through the engine: nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import shutil

import orjson
import pytest

from agents.embedded_transport import partition_for
from engine.apply import apply
from engine.effects import Execution, LedgerEntry
from engine.events import parse_event
from engine.program import compile_program
from tables.embedded_log import EmbeddedLog
from tests.support import TANSU_FAUST_OPTIONS, LoyaltyClient, produce_events, wait_until

pytestmark = pytest.mark.slow

PROGRAM = {"points_per_unit": 1.0, "rounding": "floor"}
SCENARIOS = {"weekend": {"name": "Bonus 50%", "active": True,
                         "trigger": "points.standard_added",
                         "actions": [{"type": "points.multiply", "percent": 50}]}}
MEMBERS = 100


def workload(purchases: int) -> list[dict]:
    joins = [{"id": f"join-M-{m}", "type": "member.joined", "member": f"M-{m}",
              "time": "2026-06-01T08:00:00Z", "data": {"profile": {}, "channel": "app"}}
             for m in range(MEMBERS)]
    buys = [{"id": f"p-{i}", "type": "purchase", "member": f"M-{i % MEMBERS}",
             "time": f"2026-06-02T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
             "data": {"transaction": f"t-{i}", "amount": float(1 + i % 37), "currency": "PLN",
                      "store": "S1", "till": f"T{i % 5}"}}
            for i in range(purchases)]
    return joins + buys


def clean_replay(events: list[dict]) -> dict[str, tuple[int, list[tuple]]]:
    """Balance and ledger (oldest first) per member, from the engine alone."""
    return replayed(events)[0]


def replayed(events: list[dict]) -> tuple[dict[str, tuple[int, list[tuple]]], int]:
    """``clean_replay``, and how many scenario executions the events ran."""
    program = compile_program({"program": {"default": PROGRAM}, "scenarios": SCENARIOS})
    now = parse_event(events[-1], 0).time + 1
    states, ledgers, executions = {}, {}, 0
    for document in events:
        event = parse_event(document, now)
        result = apply(states.get(event.member), event, program, now)
        states[event.member] = result.state
        ledgers.setdefault(event.member, []).extend(
            (e.kind, e.points, e.event) for e in result.effects if isinstance(e, LedgerEntry))
        executions += sum(isinstance(e, Execution) for e in result.effects)
    return {m: (states[m].balance, ledgers[m]) for m in states}, executions


def history_total(client: LoyaltyClient) -> int:
    status, body = client.worker.get("/v1/scenarios/weekend/executions?limit=1")
    return body["total"] if status == 200 else -1


class Mismatch(str):
    """A falsy description of the first member that differs (shown when a wait times out)."""

    def __bool__(self) -> bool:
        return False


def matches(client: LoyaltyClient, expected: dict) -> bool | Mismatch:
    for member, (balance, _) in expected.items():
        status, body = client.worker.get(f"/v1/members/{member}")
        if status != 200 or body["balance"] != balance:
            return Mismatch(f"{member}: expected {balance}, got {status} {body}")
    return True


def assert_exact(client: LoyaltyClient, expected: dict) -> None:
    for member, (balance, ledger) in expected.items():
        assert client.member(member)["balance"] == balance, member
        got = [(e["kind"], e["points"], e["event"]) for e in reversed(client.ledger(member))]
        assert got == ledger, member


def started_with(worker_factory, mode, request, purchases: int):
    """A configured worker fed the joins and ``purchases`` purchases; (worker, client, events)."""
    worker = worker_factory(mode).start()
    client = LoyaltyClient(worker)
    client.configure(program=PROGRAM, scenarios=SCENARIOS)
    events = workload(purchases)
    if mode == "kafka":
        # Tills write to the topic themselves, as they would in production.
        produce_events(request.getfixturevalue("tansu").bootstrap,
                       f"{worker.env['TILLSTREAM_APP_ID']}-events", events)
    else:
        client.send_many(events)
    return worker, client, events


def test_kill_9_in_the_middle_of_10000_purchases(worker_factory, mode, request):
    worker, client, events = started_with(worker_factory, mode, request, 10_000)
    wait_until(lambda: worker.get(f"/v1/members/M-{MEMBERS - 1}")[0] == 200, 180,
               message="processing to start")
    worker.kill()
    worker.start(ready_timeout=120)
    expected, executions = replayed(events)
    wait_until(lambda: matches(client, expected), 300, interval=1.0,
               message="every balance after kill -9")
    assert_exact(client, expected)
    # The scenario history lists each execution once, re-sent or not after the kill.
    wait_until(lambda: history_total(client) >= executions, 60, interval=0.5,
               message="the scenario history to catch up")
    assert history_total(client) == executions
    ids = {e["id"] for offset in range(0, executions, 500) for e in client.worker.get(
        f"/v1/scenarios/weekend/executions?offset={offset}&limit=500")[1]["executions"]}
    assert len(ids) == executions


def test_a_worker_stopped_and_started_again_keeps_every_balance(worker_factory, mode, request):
    """Its tables persisted offsets up to the changelogs' ends, which it produced in batches of
    many records. On tansu, ListOffsets answers short for such batches, and faust's recovery
    refused to start (persisted offset above the high-water mark) until the worker took
    high-water marks from fetch responses (agents/kafka_transport.py)."""
    worker, client, events = started_with(worker_factory, mode, request, 2_000)
    expected = clean_replay(events)
    wait_until(lambda: matches(client, expected), 300, interval=1.0, message="processing")
    worker.stop()
    worker.start(ready_timeout=120)
    assert_exact(client, expected)


def test_a_worker_that_lost_its_disk_rebuilds_every_member_from_the_changelog(
        worker_factory, mode, request):
    """Recovery (tables/changelog_restore.py) restores the tables a fetched batch at a time;
    the worker is ready only when every member, ledger page and list is back."""
    worker, client, events = started_with(worker_factory, mode, request, 2_000)
    expected = clean_replay(events)
    wait_until(lambda: matches(client, expected), 300, interval=1.0, message="processing")
    worker.stop()
    table_dirs = list(worker.data_dir.glob("**/tables"))
    assert table_dirs
    for table_dir in table_dirs:
        shutil.rmtree(table_dir)
    worker.start(ready_timeout=120)
    assert_exact(client, expected)


#: Group timeouts for the two-worker drill. With the 6 s of TANSU_FAUST_OPTIONS, a worker busy
#: flushing hundreds of records on a loaded 2-core machine overran the rebalance
#: timeout, was dropped from the group while still writing, and a purchase was lost once (a
#: zombie commit tansu did not fence). Generous timeouts keep every member in its generation.
PATIENT_GROUP = {"TILLSTREAM_FAUST_OPTIONS": json.dumps(
    {**TANSU_FAUST_OPTIONS, "broker_session_timeout": 30.0,
     "broker_rebalance_timeout": 30.0})}


def test_two_workers_on_tansu_one_stops_the_other_takes_over(worker_factory, tansu):
    first = worker_factory("kafka", name="w1", env=PATIENT_GROUP).start()
    second = worker_factory("kafka", name="w2", env=PATIENT_GROUP).start()
    client = LoyaltyClient(first)
    client.configure(program=PROGRAM, scenarios=SCENARIOS)
    wait_until(lambda: second.get("/v1/scenarios/weekend")[0] == 200, 20,
               message="config replicated to the second worker")
    events_topic = f"{first.env['TILLSTREAM_APP_ID']}-events"

    def split_between_both():
        owned = [set(w.get("/readyz")[1].get("assigned", {}).get(events_topic, []))
                 for w in (first, second)]
        return all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == {0, 1, 2, 3}
    wait_until(split_between_both, 60, message="the group to settle with both workers")
    events = workload(1_000)
    # The tills write to the topic themselves: the drill is about the workers, not ingestion.
    produce_events(tansu.bootstrap, events_topic, events)
    second.stop()
    first.wait_ready(120)
    expected = clean_replay(events)
    wait_until(lambda: matches(client, expected), 300, interval=1.0,
               message="the remaining worker to finish every partition")
    assert_exact(client, expected)
    status, ready = first.get("/readyz")
    assert sorted(ready["assigned"][f"{first.env['TILLSTREAM_APP_ID']}-events"]) == [0, 1, 2, 3]


#: Records of ``<app>-executions`` the scenario history cannot read: not JSON, a source that
#: is not a position, fewer sources than executions.
BAD_EXECUTIONS = [b"{not json", b'[[0,1]]\n{"id":"e1:weekend"}',
                  b'[[0,1,1],[0,2,1]]\n{"id":"e1:weekend"}']
POISON = [
    (b"M-1", b"{not json", "malformed_json"),
    (b"M-1", orjson.dumps({"id": "x1", "type": "teleport", "member": "M-1", "data": {}}),
     "invalid_event"),
    (b"M-1", orjson.dumps({"id": "x2", "type": "purchase", "member": "M-1",
                           "data": {"transaction": "t", "amount": "lots", "currency": "PLN",
                                    "store": "S1", "till": "T1"}}), "invalid_event"),
    (b"M-404", orjson.dumps({"id": "x3", "type": "purchase", "member": "M-404",
                             "data": {"transaction": "t", "amount": 10.0, "currency": "PLN",
                                      "store": "S1", "till": "T1"}}), "member_unknown"),
    (b"M-1", b"{" + b" " * (300 * 1024) + b"}", "too_large"),
    (b"M-2", orjson.dumps({"id": "x4", "type": "visit", "member": "M-1",
                           "data": {"store": "S1"}}), "key_mismatch"),
    # found by schemathesis: its points would not fit a 64-bit integer (the worker crashed)
    (b"M-1", orjson.dumps({"id": "x5", "type": "purchase", "member": "M-1",
                           "data": {"transaction": "t", "amount": 1e20, "currency": "PLN",
                                    "store": "S1", "till": "T1"}}), "invalid_event"),
]


def test_poison_records_go_to_the_dlq_with_a_reason_and_processing_continues(worker_factory):
    worker = worker_factory("embedded").start()
    client = LoyaltyClient(worker)
    client.configure(program=PROGRAM)
    client.join("M-1")
    client.wait_member("M-1", lambda m: True)
    worker.stop()

    log = EmbeddedLog.open(worker.data_dir / "log")
    topic = next(t for t in log.topics() if t.endswith("-events"))
    partitions = log.topic(topic).partitions
    for key, value, _ in POISON:
        log.append(topic, partition_for(key, partitions), key, value)
    good = {"id": "after-poison", "type": "purchase", "member": "M-1",
            "time": "2026-06-02T10:00:00Z",
            "data": {"transaction": "t-ok", "amount": 25.0, "currency": "PLN", "store": "S1",
                     "till": "T1"}}
    log.append(topic, partition_for(b"M-1", partitions), b"M-1", orjson.dumps(good))
    executions = next(t for t in log.topics() if t.endswith("-executions"))
    for value in BAD_EXECUTIONS:
        log.append(executions, 0, b"weekend", value)
    log.close()

    worker.start()
    assert client.wait_member("M-1", lambda m: m["balance"] == 25)["balance"] == 25
    metrics = worker.get("/metrics")[1]["raw"]
    for reason in {reason for _, _, reason in POISON} | {"malformed_execution"}:
        assert f'tillstream_dlq_records_total{{reason="{reason}"}}' in metrics, reason
    worker.stop()

    log = EmbeddedLog.open(worker.data_dir / "log")
    dlq = next(t for t in log.topics() if t.endswith("-dlq"))
    records = [orjson.loads(r.value) for p in range(log.topic(dlq).partitions)
               for r in log.read(dlq, p, 0, 1000)]
    log.close()
    assert sorted(r["reason"] for r in records) == sorted(
        [reason for _, _, reason in POISON] + ["malformed_execution"] * len(BAD_EXECUTIONS))
    assert all(r["details"] or r["reason"] in ("too_large", "member_unknown") for r in records)
    huge = next(r for r in records if r["reason"] == "too_large")
    assert huge["truncated"] and huge["value_bytes"] > 300 * 1024
