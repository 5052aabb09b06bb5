"""Events/s through the minimal per-member counter agent (agents/counter.py), per runtime mode.

A rough figure for issue 2, not a timed test::

    .venv/bin/python -m bench.minimal --events 20000 --mode embedded|kafka|both

For each mode it

1. preloads N counter events (key = raw member id, value = the event as JSON, spread over
   ``--members`` members) into the ``<app>-events`` topic *before* the worker starts:
   embedded mode writes straight into the worker's embedded log (``<data-dir>/log``) with
   :class:`tables.embedded_log.EmbeddedLog`; Kafka mode starts tansu (tests.support.TansuBroker),
   creates the topic with explicit configs and produces with aiokafka in large batches;
2. starts a ``tillstream worker`` subprocess with ``TILLSTREAM_PIPELINE=minimal``
   (tests.support.WorkerProcess) and waits for ``/readyz``;
3. times until every event is applied. Each partition is consumed in order, so a partition is
   done once the member of its last record shows that member's final count: the script polls
   only those few members (every ``--poll`` seconds, to leave the CPU to the worker);
4. verifies every member's count and amount against what was produced (all members, by GET),
   prints events/s and writes ``bench/results/minimal-<mode>-<date>.json``.

The figure ``events_per_s`` is N / (ready → all applied); the worker starts consuming as
recovery finishes, which is when ``/readyz`` turns 200, so the startup is excluded up to the
readiness poll interval (0.2 s). ``events_per_s_incl_startup`` counts from the spawn.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from agents.embedded_transport import partition_for
from agents.topics import EVENT_RETENTION_SECONDS
from bench import measure
from tables.embedded_log import EmbeddedLog
from tests.support import TANSU_FAUST_OPTIONS, TansuBroker, WorkerProcess, http

APP_ID = "tillstream"
EVENTS_TOPIC = f"{APP_ID}-events"  # agents/topics.py: f"{app.conf.id}-events"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MINIMAL = {"TILLSTREAM_PIPELINE": "minimal"}


@dataclass
class Workload:
    """The events to preload, with what the counter table must hold afterwards."""

    events: int
    members: int
    partitions: int
    records: list[tuple[int, bytes, bytes]] = field(default_factory=list)  # (partition, key, value)
    expected: dict[str, tuple[int, float]] = field(default_factory=dict)  # member -> (count, amount)
    last_member: dict[int, str] = field(default_factory=dict)  # partition -> member of last record

    @classmethod
    def build(cls, events: int, members: int, partitions: int) -> "Workload":
        work = cls(events, members, partitions)
        counts = [0] * members
        amounts = [0.0] * members
        for i in range(events):
            m = i % members
            member = f"M-{m}"
            amount = float(i % 7 + 1)  # integers: float sums stay exact
            key = member.encode()
            value = orjson.dumps({"id": f"bench-{i}", "type": "purchase", "member": member,
                                  "data": {"amount": amount}})
            partition = partition_for(key, partitions)
            work.records.append((partition, key, value))
            work.last_member[partition] = member
            counts[m] += 1
            amounts[m] += amount
        work.expected = {f"M-{m}": (counts[m], amounts[m]) for m in range(members) if counts[m]}
        return work

    def by_partition(self) -> dict[int, list[tuple[bytes, bytes]]]:
        out: dict[int, list[tuple[bytes, bytes]]] = {}
        for partition, key, value in self.records:
            out.setdefault(partition, []).append((key, value))
        return out


# -- preloading ----------------------------------------------------------------------------------

def preload_embedded(work: Workload, data_dir: Path) -> None:
    """Append the events to the worker's embedded log (closed again before the worker opens it).

    The topic is created as the embedded transport would declare ``<app>-events``
    (delete policy, retention of agents/topics.py); an existing topic keeps its metadata.
    """
    log = EmbeddedLog.open(data_dir / "log")
    try:
        log.create_topic(EVENTS_TOPIC, work.partitions, compacted=False,
                         retention_ms=EVENT_RETENTION_SECONDS * 1000)
        for partition, records in work.by_partition().items():
            for start in range(0, len(records), 1000):
                log.append_many(EVENTS_TOPIC, partition,
                                [(k, v, None, ()) for k, v in records[start:start + 1000]])
        ends = sum(log.end_offset(EVENTS_TOPIC, p) for p in range(work.partitions))
        if ends != work.events:
            raise RuntimeError(f"embedded log holds {ends} events, expected {work.events}")
    finally:
        log.close()


async def preload_kafka(work: Workload, bootstrap: str) -> None:
    """Create ``<app>-events`` with explicit configs and produce the records in large batches."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "delete",
                   "retention.ms": str(EVENT_RETENTION_SECONDS * 1000)}
        await admin.create_topics([NewTopic(EVENTS_TOPIC, work.partitions, 1,
                                            topic_configs=configs)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=256 * 1024,
                                linger_ms=5, acks=1)
    await producer.start()
    try:
        futures = [await producer.send(EVENTS_TOPIC, value, key=key, partition=partition)
                   for partition, key, value in work.records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(EVENTS_TOPIC, p) for p in range(work.partitions)]
        ends = sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()
    if ends != work.events:
        raise RuntimeError(f"tansu end offsets sum to {ends}, expected {work.events}")


# -- measuring -----------------------------------------------------------------------------------

def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), 0.0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _counter(worker: WorkerProcess, member: str) -> tuple[int, float] | None:
    status, body = http("GET", f"{worker.url}/v1/counters/{member}", timeout=10)
    if status != 200:
        return None
    return body["count"], body["amount"]


def wait_applied(worker: WorkerProcess, work: Workload, timeout: float, poll: float) -> int:
    """Block until the last record of every partition is applied; returns polls made."""
    pending = {member: work.expected[member][0] for member in set(work.last_member.values())}
    deadline = time.monotonic() + timeout
    polls = 0
    while pending:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited: {worker.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not all events applied after {timeout}s; pending {pending}")
        for member, count in list(pending.items()):
            try:
                row = _counter(worker, member)
            except OSError:
                row = None
            if row is not None and row[0] >= count:
                del pending[member]
        polls += 1
        if pending:
            time.sleep(poll)
    return polls


def verify(worker: WorkerProcess, work: Workload) -> dict:
    """Every member's count and amount, by GET, against what was produced."""
    mismatches = []
    total_count = 0
    total_amount = 0.0
    for member, (count, amount) in work.expected.items():
        row = _counter(worker, member)
        if row is None:
            mismatches.append({"member": member, "expected": [count, amount], "got": None})
            continue
        total_count += row[0]
        total_amount += row[1]
        if row != (count, amount):
            mismatches.append({"member": member, "expected": [count, amount], "got": list(row)})
    expected_amount = sum(amount for _, amount in work.expected.values())
    return {"members_checked": len(work.expected), "total_count": total_count,
            "expected_count": work.events, "total_amount": total_amount,
            "expected_amount": expected_amount, "mismatches": len(mismatches),
            "first_mismatches": mismatches[:5],
            "exact": not mismatches and total_count == work.events
            and total_amount == expected_amount}


def run_mode(mode: str, work: Workload, root: Path, timeout: float, poll: float) -> dict:
    data_dir = root / f"{mode}-worker"
    data_dir.mkdir(parents=True)
    broker = None
    worker = None
    result: dict = {"mode": mode}
    try:
        t0 = time.perf_counter()
        if mode == "embedded":
            preload_embedded(work, data_dir)
            worker = WorkerProcess(data_dir, app_id=APP_ID, partitions=work.partitions,
                                   extra_env=MINIMAL)
        else:
            broker = TansuBroker().start()
            asyncio.run(preload_kafka(work, broker.bootstrap))
            worker = WorkerProcess(data_dir, broker=broker.url, app_id=APP_ID,
                                   partitions=work.partitions, faust_options=TANSU_FAUST_OPTIONS,
                                   extra_env=MINIMAL)
        preload_s = time.perf_counter() - t0

        load_before = os.getloadavg()
        t_spawn = time.perf_counter()
        worker.start(ready_timeout=120)
        t_ready = time.perf_counter()
        cpu_ready = _cpu_seconds(worker.process.pid)
        broker_cpu_ready = _cpu_seconds(broker.process.pid) if broker else 0.0
        polls = wait_applied(worker, work, timeout, poll)
        t_done = time.perf_counter()
        worker_cpu = _cpu_seconds(worker.process.pid) - cpu_ready
        broker_cpu = (_cpu_seconds(broker.process.pid) - broker_cpu_ready) if broker else None

        processing_s = t_done - t_ready
        result.update(
            preload_s=round(preload_s, 3),
            startup_s=round(t_ready - t_spawn, 3),
            processing_s=round(processing_s, 3),
            events_per_s=round(work.events / processing_s, 1),
            events_per_s_incl_startup=round(work.events / (t_done - t_spawn), 1),
            worker_cpu_s=round(worker_cpu, 2),
            worker_cpu_pct_of_one_core=round(100 * worker_cpu / processing_s, 1),
            broker_cpu_s=None if broker_cpu is None else round(broker_cpu, 2),
            completion_polls=polls,
            # other processes on the machine skew the figure: 1-minute load before and after
            loadavg_1m=[round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            faust_options=TANSU_FAUST_OPTIONS if mode == "kafka" else {},
        )
        result["verification"] = verify(worker, work)
        return result
    except Exception:
        if worker is not None:
            print(f"--- worker log tail ({mode}) ---\n{worker.log_tail()}", file=sys.stderr)
        raise
    finally:
        if worker is not None:
            worker.stop()
        if broker is not None:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.minimal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--mode", choices=("embedded", "kafka", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for all events to be applied")
    parser.add_argument("--poll", type=float, default=0.5,
                        help="seconds between completion polls (a few GETs each)")
    parser.add_argument("--date", default=dt.date.today().isoformat(),
                        help="date in the result file name (default: today)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directories and worker logs")
    args = parser.parse_args(argv)

    work = Workload.build(args.events, args.members, args.partitions)
    modes = ["embedded", "kafka"] if args.mode == "both" else [args.mode]
    machine = measure.machine()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="tillstream-bench-minimal-"))
    ok = True
    try:
        for mode in modes:
            print(f"[{mode}] preloading {args.events} events over {len(work.expected)} members, "
                  f"{args.partitions} partitions ...", flush=True)
            result = run_mode(mode, work, root, args.timeout, args.poll)
            result.update(events=args.events, members=len(work.expected),
                          partitions=args.partitions, date=args.date, machine=machine,
                          command="python -m bench.minimal " + " ".join(
                              sys.argv[1:] if argv is None else argv))
            check = result["verification"]
            ok = ok and check["exact"]
            print(f"[{mode}] {result['events_per_s']:.0f} events/s "
                  f"({args.events} events in {result['processing_s']:.2f} s after ready; "
                  f"startup {result['startup_s']:.2f} s; "
                  f"{result['events_per_s_incl_startup']:.0f} events/s incl. startup; "
                  f"worker CPU {result['worker_cpu_pct_of_one_core']:.0f}% of a core; "
                  f"load {result['loadavg_1m'][0]}->{result['loadavg_1m'][1]})",
                  flush=True)
            print(f"[{mode}] verification: {'EXACT' if check['exact'] else 'MISMATCH'} "
                  f"(count {check['total_count']}/{check['expected_count']}, "
                  f"amount {check['total_amount']}/{check['expected_amount']}, "
                  f"{check['mismatches']} member mismatches of {check['members_checked']})",
                  flush=True)
            out = RESULTS_DIR / f"minimal-{mode}-{args.date}.json"
            out.write_text(json.dumps(result, indent=2) + "\n")
            print(f"[{mode}] wrote {out}", flush=True)
    finally:
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
