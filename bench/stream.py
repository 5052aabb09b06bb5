"""The stream benchmarks of issue 6: Tillstream (embedded; Kafka on tansu with 1 and 2 workers)
and its peers on the same generated events. Driven by ``python -m bench``; see ``bench/RESULTS.md``
(section "Stream pipeline and peers (issue 6)") for the method and the figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson

from bench import kafka as kq
from bench import stage_timers
from bench.engine_apply import Generator
from bench.measure import (OpenLoopSchedule, ProcessWatch, cpu_seconds, exact_percentiles,
                           histogram_percentiles, loadavg, log_histogram_percentiles,
                           merge_scrapes, parse_prometheus)
from bench.workload import (LoyaltyWorkload, minimal_documents, minimal_expected, mix_of,
                            program_collections, to_records)
from tests.support import (REPO, TANSU_FAUST_OPTIONS, LoyaltyClient, TansuBroker,
                           WorkerProcess, free_port, http)

APP_ID = "tillstream"
EVENTS_TOPIC = f"{APP_ID}-events"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the shared stream ---------------------------------------------------------------------------

def fork(workload: LoyaltyWorkload) -> LoyaltyWorkload:
    """An independent continuation of a workload's seeded stream (the member list and the Zipf
    table are shared, read-only)."""
    old = workload.generator
    gen = Generator.__new__(Generator)
    gen.rng = random.Random()
    gen.rng.setstate(old.rng.getstate())
    gen.members, gen.cumulative = old.members, old.cumulative
    gen.purchases = {m: list(v) for m, v in old.purchases.items()}
    gen.seq, gen.clock, gen.joined = old.seq, old.clock, old.joined
    new = LoyaltyWorkload.__new__(LoyaltyWorkload)
    new.seed, new.partitions, new.population = workload.seed, workload.partitions, \
        workload.population
    new.generator = gen
    new.joined = set(workload.joined)
    new._join_seq = workload._join_seq
    return new


class Stream:
    """The throughput part, generated once and shared by every engine."""

    def __init__(self, events: int, seed: int, partitions: int,
                 minimal_events: int | None = None) -> None:
        began = time.perf_counter()
        self.partitions = partitions
        self.base = LoyaltyWorkload(seed, partitions)
        self.joins, self.events = self.base.extend(events)
        self.minimal = repeated_minimal(minimal_documents(self.events),
                                        minimal_events or len(self.events))
        self.generate_s = round(time.perf_counter() - began, 2)

    def describe(self) -> dict:
        return {"events": len(self.events), "minimal_events": len(self.minimal),
                "warmup_joins": len(self.joins),
                "distinct_members": len(self.base.joined), "mix": mix_of(self.events),
                "seed": self.base.seed, "population": self.base.population,
                "generate_s": self.generate_s}


def repeated_minimal(documents: list[dict], count: int) -> list[dict]:
    """``count`` minimal events: the loyalty stream's, then the same again under new event ids
    (``<id>~2``, ...) as often as needed. The minimal engines run 15-50 times faster than the
    loyalty worker, and on the loyalty stream's 60,000 events their runs lasted 0.2-1.4 s,
    too short to time to a few percent with polls 50 ms apart."""
    out = documents[:count]
    lap = 1
    while len(out) < count:
        lap += 1
        out.extend({**doc, "id": f"{doc['id']}~{lap}"} for doc in documents[:count - len(out)])
    return out


# -- Tillstream workers --------------------------------------------------------------------------

def _spawn(worker: WorkerProcess, module: str = "agents.cli") -> None:
    worker._log = open(worker.log_path, "ab")
    worker.process = subprocess.Popen([sys.executable, "-m", module, "worker"], cwd=REPO,
                                      env=worker.env, stdout=worker._log,
                                      stderr=subprocess.STDOUT)


class Cluster:
    """One broker (tansu, or none in embedded mode) and N ``tillstream worker`` processes."""

    def __init__(self, root: Path, mode: str, workers: int, partitions: int,
                 pipeline: str = "loyalty", stage_timers: Path | None = None) -> None:
        """``stage_timers``: run the workers with timers on their stages (bench/stage_timers.py),
        which write their totals to that file."""
        self.root = root
        self.mode = mode
        self.partitions = partitions
        self.pipeline = pipeline
        self.broker = TansuBroker().start() if mode == "kafka" else None
        env = {"TILLSTREAM_PIPELINE": pipeline}
        self.worker_module = "agents.cli"
        if stage_timers is not None:
            env["TILLSTREAM_STAGE_TIMERS"] = str(stage_timers)
            self.worker_module = "bench.stage_timers"
        self.workers = []
        for i in range(workers):
            data_dir = root / f"worker{i}"
            data_dir.mkdir(parents=True, exist_ok=True)
            self.workers.append(WorkerProcess(
                data_dir, broker=self.broker.url if self.broker else "embedded://",
                app_id=APP_ID, partitions=partitions,
                faust_options=TANSU_FAUST_OPTIONS if self.broker else None, extra_env=env))

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]

    def spawn(self) -> None:
        for worker in self.workers:
            _spawn(worker, self.worker_module)

    def start(self, timeout: float = 300.0) -> float:
        """Start every worker at once; returns the seconds until all are ready."""
        began = time.perf_counter()
        for worker in self.workers:
            _spawn(worker, self.worker_module)
        for worker in self.workers:
            worker.wait_ready(timeout)
        return time.perf_counter() - began

    def stop(self) -> None:
        for worker in self.workers:
            if worker.process and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.stop()

    def close(self) -> None:
        self.stop()
        if self.broker:
            self.broker.stop()

    def scrape(self) -> dict:
        return merge_scrapes(self.scrape_each())

    def scrape_each(self) -> list[dict]:
        """Each worker's metrics, parsed (``parse_prometheus``)."""
        scrapes = []
        for worker in self.workers:
            status, body = http("GET", worker.url + "/metrics", timeout=10)
            text = body.get("raw", "") if isinstance(body, dict) else ""
            scrapes.append(parse_prometheus(text))
        return scrapes

    def check_alive(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{worker.log_tail()}")

    def wait_events(self, target: float, timeout: float, poll: float = 0.25,
                    series: list | None = None) -> dict:
        """Poll the workers' metrics until ``tillstream_events_total`` has reached ``target``
        and everything is consumed: the events topic's lag (``tillstream_consumer_lag``, every
        partition reported) is 0 and the count has not moved over the last two polls (the
        agents also feed internal events back into the topic, which count too). ``t_done`` is
        the first poll that saw the final count."""
        began = time.perf_counter()
        series = [] if series is None else series
        stable_since = None
        while True:
            self.check_alive()
            try:
                scrape = self.scrape()
            except (OSError, ValueError):
                scrape = None
            now = time.perf_counter()
            if scrape is not None:
                count = scrape["events"]
                if series and count == series[-1][1]:
                    stable_since = stable_since or series[-1][0]
                    stable_polls = sum(1 for t, c in series[-3:] if c == count)
                else:
                    stable_since, stable_polls = None, 0
                series.append((now, count))
                drained = scrape["lag"] == 0 and scrape["lag_series"] >= self.partitions
                if count >= target and drained and stable_polls >= 2:
                    return {"done": True, "t_done": stable_since, "series": series,
                            "count": count}
            if now - began > timeout:
                return {"done": False, "t_done": now, "series": series,
                        "count": series[-1][1] if series else 0}
            time.sleep(poll)

    # feeding ---------------------------------------------------------------------------------

    def preload_stopped(self, documents: list[dict]) -> float:
        """Write events into the log while the workers are stopped; returns seconds."""
        records = to_records(documents, self.partitions)
        began = time.perf_counter()
        if self.broker:
            asyncio.run(kq.preload(self.broker.bootstrap, EVENTS_TOPIC, records))
        else:
            from tables.embedded_log import EmbeddedLog
            from agents.topics import EVENT_RETENTION_SECONDS
            log_ = EmbeddedLog.open(self.workers[0].data_dir / "log")
            try:
                log_.create_topic(EVENTS_TOPIC, self.partitions, compacted=False,
                                  retention_ms=EVENT_RETENTION_SECONDS * 1000)
                by_partition: dict[int, list] = {}
                for partition, key, value in records:
                    by_partition.setdefault(partition, []).append((key, value, None, ()))
                for partition, rows in by_partition.items():
                    for start in range(0, len(rows), 2000):
                        log_.append_many(EVENTS_TOPIC, partition, rows[start:start + 2000])
            finally:
                log_.close()
        return time.perf_counter() - began

    def feed_running(self, documents: list[dict]) -> float:
        """Send events to running workers as fast as they take them (untimed warm-ups)."""
        began = time.perf_counter()
        if self.broker:
            asyncio.run(kq.preload(self.broker.bootstrap, EVENTS_TOPIC,
                                   to_records(documents, self.partitions)))
        else:
            asyncio.run(_post_all(self.workers[0].url, documents))
        return time.perf_counter() - began

    def open_loop(self, documents: list[dict], rate: float, tick: float = 0.02,
                  watch_broker: bool = False) -> dict:
        """Send ``documents`` at ``rate`` on a fixed schedule; over HTTP (embedded) one request
        every ``tick`` seconds. ``watch_broker`` (Kafka): time the broker's own delivery of
        the events meanwhile (bench.kafka.DeliveryWatch)."""
        if self.broker:
            delivery = (kq.DeliveryWatch(self.broker.bootstrap, EVENTS_TOPIC) if watch_broker
                        else None)
            return asyncio.run(kq.open_loop_kafka(self.broker.bootstrap, EVENTS_TOPIC,
                                                  to_records(documents, self.partitions), rate,
                                                  delivery=delivery))
        path = "/v1/counters" if self.pipeline == "minimal" else "/v1/events"
        return asyncio.run(open_loop_http(self.workers[0].url, documents, rate, tick=tick,
                                          path=path))

    def read_topic(self, topic: str) -> list[tuple[bytes, bytes]] | None:
        """Every record of a topic (Kafka: while running; embedded: after ``stop``)."""
        if self.broker:
            return asyncio.run(kq.read_all(self.broker.bootstrap, topic, self.partitions))
        from tables.embedded_log import EmbeddedLog
        log_ = EmbeddedLog.open(self.workers[0].data_dir / "log")
        try:
            meta = log_.topic(topic)
            if meta is None:
                return None
            out = []
            for partition in range(meta.partitions):
                offset = log_.start_offset(topic, partition)
                while True:
                    rows = log_.read(topic, partition, offset, 5000)
                    if not rows:
                        break
                    out.extend((r.key, r.value) for r in rows)
                    offset = rows[-1].offset + 1
            return out
        finally:
            log_.close()


async def _post_all(url: str, documents: list[dict], batch: int = 1000,
                    concurrency: int = 4) -> None:
    import aiohttp
    bodies = [orjson.dumps({"events": documents[i:i + batch]})
              for i in range(0, len(documents), batch)]
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def post(body: bytes) -> None:
            async with semaphore:
                async with session.post(url + "/v1/events", data=body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    if resp.status != 202:
                        raise RuntimeError(f"POST /v1/events: {resp.status} "
                                           f"{(await resp.text())[:300]}")
        await asyncio.gather(*(post(b) for b in bodies))


async def open_loop_http(url: str, documents: list[dict], rate: float,
                         tick: float = 0.02, path: str = "/v1/events") -> dict:
    """``POST /v1/events`` on a fixed schedule: every ``tick`` seconds one request with the
    events due by then, fired without waiting for earlier requests (an open loop)."""
    import aiohttp
    connector = aiohttp.TCPConnector(limit=64)
    errors = 0
    tasks = []
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=300)) as session:
        async def post(body: bytes) -> None:
            nonlocal errors
            try:
                async with session.post(url + path, data=body,
                                        headers={"Content-Type": "application/json"}) as resp:
                    await resp.read()
                    if resp.status != 202:
                        errors += 1
            except Exception:  # noqa: BLE001 - counted, reported
                errors += 1
        sent = 0
        schedule = OpenLoopSchedule(rate, len(documents), tick)
        async for due in schedule:
            while sent < due:
                chunk = documents[sent:min(due, sent + 1000)]
                tasks.append(asyncio.ensure_future(post(orjson.dumps({"events": chunk}))))
                sent += len(chunk)
        await asyncio.gather(*tasks)
    return {"sent": sent, "send_s": round(schedule.seconds, 3),
            "achieved_rate": round(sent / schedule.seconds, 1),
            "max_behind_schedule_s": round(schedule.max_behind, 3), "http_errors": errors,
            "requests": len(tasks)}


def _rates(series: list[tuple[float, float]], total: float, t_ready: float) -> dict:
    """Steady rate between 10 % and 90 % of the events, from the poll series."""
    t10 = t90 = None
    c10 = c90 = 0.0
    for t, c in series:
        if t10 is None and c >= 0.1 * total:
            t10, c10 = t, c
        if t90 is None and c >= 0.9 * total:
            t90, c90 = t, c
    steady = (c90 - c10) / (t90 - t10) if t10 is not None and t90 and t90 > t10 else None
    return {"steady_events_per_s": None if steady is None else round(steady, 1)}


def joins_needed(stream: Stream, documents: list[dict]) -> int:
    """How many of ``stream.joins`` (in first-appearance order) the first events need."""
    seen: set = set()
    for doc in documents:
        for member in (doc["member"], doc["data"].get("referrer")):
            if member is None or member in seen:
                continue
            if not (doc["type"] == "member.joined" and member == doc["member"]):
                seen.add(member)
    return len(seen)


def _member_counts(documents: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in documents:
        if doc["type"] == "purchase":
            out[doc["member"]] = out.get(doc["member"], 0) + 1
    return out


def verify_loyalty(cluster: Cluster, documents: list[dict], sample: int = 60) -> dict:
    """A sample of members (the heaviest and random ones) by ``GET /v1/members/{id}``: each
    must exist and have exactly the number of purchases sent for it."""
    counts = _member_counts(documents)
    heavy = sorted(counts, key=counts.get, reverse=True)[:sample // 2]
    rng = random.Random(1)
    members = heavy + rng.sample(sorted(counts), min(len(counts), sample - len(heavy)))
    mismatches = []
    for member in members:
        status, body = http("GET", f"{cluster.workers[0].url}/v1/members/{member}", timeout=10)
        got = body.get("purchases_total") if status == 200 else None
        if got != counts[member]:
            mismatches.append({"member": member, "expected_purchases": counts[member],
                               "status": status, "got": got})
    return {"members_checked": len(members), "mismatches": len(mismatches),
            "first_mismatches": mismatches[:5], "exact": not mismatches}


def verify_minimal_counters(cluster: Cluster, documents: list[dict], sample: int = 200) -> dict:
    """The minimal pipeline (agents/counter.py): count and amount of a sample of members."""
    expected: dict[str, list] = {}
    for doc in documents:
        row = expected.setdefault(doc["member"], [0, 0.0])
        row[0] += 1
        row[1] += doc["data"]["amount"]
    members = sorted(expected, key=lambda m: expected[m][0], reverse=True)[:sample // 2]
    members += random.Random(2).sample(sorted(expected), min(len(expected),
                                                             sample - len(members)))
    mismatches = []
    for member in members:
        status, body = http("GET", f"{cluster.workers[0].url}/v1/counters/{member}", timeout=10)
        got = [body.get("count"), body.get("amount")] if status == 200 else None
        if got is None or got[0] != expected[member][0] or \
                abs(got[1] - expected[member][1]) > 1e-6 * max(1.0, expected[member][1]):
            mismatches.append({"member": member, "expected": expected[member], "got": got})
    return {"members_checked": len(members), "mismatches": len(mismatches),
            "first_mismatches": mismatches[:5], "exact": not mismatches}


def wait_minimal_by_counters(cluster: Cluster, documents: list[dict], timeout: float,
                             poll: float = 0.5) -> dict:
    """Fallback completion check for a minimal pipeline without ``tillstream_events_total``:
    each partition is consumed in order, so it is done once the member of its last record shows
    its final count (bench/minimal.py's approach)."""
    from agents.embedded_transport import partition_for
    last: dict[int, str] = {}
    counts: dict[str, int] = {}
    for doc in documents:
        last[partition_for(doc["member"].encode(), cluster.partitions)] = doc["member"]
        counts[doc["member"]] = counts.get(doc["member"], 0) + 1
    pending = {m: counts[m] for m in set(last.values())}
    began = time.perf_counter()
    while pending:
        cluster.check_alive()
        for member, count in list(pending.items()):
            status, body = http("GET", f"{cluster.workers[0].url}/v1/counters/{member}",
                                timeout=10)
            if status == 200 and body.get("count", 0) >= count:
                del pending[member]
        if time.perf_counter() - began > timeout:
            return {"done": False, "t_done": time.perf_counter(), "series": []}
        if pending:
            time.sleep(poll)
    return {"done": True, "t_done": time.perf_counter(), "series": []}


class WebhookSink:
    """``bench.webhook_sink`` in a process of its own, and the benchmark program's webhook
    actions pointed at it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "bench.webhook_sink",
                                         str(self.port)], cwd=REPO)
        self.url = f"http://127.0.0.1:{self.port}/hook"
        deadline = time.monotonic() + 30
        while True:
            try:
                self.count()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the webhook sink did not start")
                time.sleep(0.1)

    def count(self) -> int:
        status, body = http("GET", f"http://127.0.0.1:{self.port}/count", timeout=5)
        if status != 200:
            raise RuntimeError(f"the webhook sink answered {status}: {body}")
        return body["count"]

    def point_at(self, collections: dict) -> None:
        for scenario in collections["scenarios"].values():
            for action in scenario.get("actions", []):
                if action.get("type") == "webhook":
                    action["url"] = self.url

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def latency_peak(result: dict, opts) -> float:
    """The rate the latency runs take fractions of: this run's events/s, or with ``--repeat``
    the median of every round's (``opts.prior_peaks``: engine -> the earlier rounds')."""
    runs = [*getattr(opts, "prior_peaks", {}).get(result["engine"], []),
            result["throughput"]["events_per_s"]]
    peak = statistics.median(runs)
    result["latency_peak"] = {"events_per_s": peak, "runs": len(runs)}
    return peak


def run_tillstream(stream: Stream, root: Path, mode: str, workers: int, pipeline: str,
                   opts) -> dict:
    """Throughput on a preloaded log, then (1 worker) the open-loop latency runs."""
    name = f"tillstream-{mode}" + (f"-{workers}w" if mode == "kafka" else "") + \
        ("-minimal" if pipeline == "minimal" else "")
    result: dict = {"engine": name, "mode": mode, "workers": workers, "pipeline": pipeline}
    loyalty = pipeline == "loyalty"
    stage_file = (root / f"{name}-stages.json" if getattr(opts, "stages", False)
                  and mode == "embedded" and loyalty else None)
    cluster = Cluster(root / name, mode, workers, stream.partitions, pipeline,
                      stage_timers=stage_file)
    measured = stream.events if loyalty else stream.minimal
    sent_docs = list(measured)
    sink = None
    try:
        # 1. configuration (replicated config topic: survives the restarts) and warm-up joins
        result["first_start_s"] = round(cluster.start(), 2)
        if loyalty:
            program, collections = program_collections()
            sink = WebhookSink()  # the program's webhooks reach a receiver that answers
            sink.point_at(collections)
            LoyaltyClient(cluster.workers[0]).configure(program, **collections)
            time.sleep(1.0)  # let every worker's config reader see it
            # Warm-up in two steps: a first slice of the joins gives the pace, which sizes the
            # measured part to about --target-seconds; then only the joins that part needs.
            first = stream.joins[:opts.calibration_joins]
            feed_s = cluster.feed_running(first)
            wait = cluster.wait_events(len(first), opts.timeout)
            if not wait["done"]:
                raise RuntimeError(f"warm-up joins not processed in {opts.timeout}s")
            pace = len(first) / (wait["t_done"] - wait["series"][0][0] + feed_s)
            keep = min(len(measured), max(2000, int(pace * opts.target_seconds)))
            if keep < len(measured):
                measured = measured[:keep]
                sent_docs = list(measured)
                result["trimmed_to"] = keep
            needed = joins_needed(stream, measured)
            rest = stream.joins[len(first):needed]
            if rest:
                done = cluster.scrape()["events"]
                feed_s += cluster.feed_running(rest)
                if not cluster.wait_events(done + len(rest), opts.timeout)["done"]:
                    raise RuntimeError(f"warm-up joins not processed in {opts.timeout}s")
            fed = stream.joins[:max(len(first), needed)]
            result["warmup"] = {"joins": len(fed), "feed_s": round(feed_s, 2),
                                "joins_per_s": round(pace, 1)}
        # 2. stop, preload the measured events, start again: throughput on a preloaded log
        cluster.stop()
        result["preload_s"] = round(cluster.preload_stopped(measured), 2)
        load_before = loadavg()
        t_spawn = time.perf_counter()
        cluster.spawn()
        watch = ProcessWatch(cluster.pids)
        broker_cpu_0 = cpu_seconds(cluster.broker.process.pid) if cluster.broker else None
        stages = StageWatch(stage_file) if stage_file else None
        # Poll the metrics from the spawn on (every 50 ms): the start of processing is the last
        # poll that still saw 0 events, so neither startup nor the readiness poll skews it.
        metric_based = True
        wait = cluster.wait_events(len(measured), 40.0 if not loyalty else opts.timeout,
                                   poll=0.05)
        if not wait["done"] and not loyalty:
            if wait["count"] == 0:  # a minimal pipeline without tillstream_events_total
                metric_based = False
                cluster.workers[0].wait_ready(opts.timeout)
                wait = wait_minimal_by_counters(cluster, measured, opts.timeout)
            else:
                wait = cluster.wait_events(len(measured), opts.timeout, poll=0.05,
                                           series=wait["series"])
        zeros = [t for t, c in wait["series"] if c == 0]
        t_ready = zeros[-1] if zeros else t_spawn
        scrape0 = {"events": 0.0, "buckets": {}, "count": 0.0, "sum": 0.0}
        resources = watch.stop()
        if broker_cpu_0 is not None:  # tansu shares the 2 cores with the workers
            resources["broker_cpu_s"] = round(
                cpu_seconds(cluster.broker.process.pid) - broker_cpu_0, 2)
        elapsed = wait["t_done"] - t_ready
        for worker in cluster.workers:
            worker.wait_ready(opts.timeout)
        counted = wait.get("count", 0)
        # tillstream_events_total also counts internal events the agents feed back (referrals,
        # timers): the rate is of input events.
        processed = len(measured) if wait["done"] else min(counted, len(measured))
        if not wait["done"] and not wait["series"]:
            processed = 0
        each = cluster.scrape_each()
        scrape1 = merge_scrapes(each)
        result["throughput"] = {
            "events": len(measured), "completed": wait["done"],
            "completion": ("tillstream_events_total + consumer lag 0" if metric_based
                           else "counter polls"),
            "events_total_incl_internal": counted,
            "processing_s": round(elapsed, 2),
            "events_per_s": round(processed / elapsed, 1),
            "events_per_s_per_worker": round(processed / elapsed / workers, 1),
            "events_per_s_incl_startup": round(processed / (wait["t_done"] - t_spawn), 1),
            "startup_s": round(t_ready - t_spawn, 2),
            "first_poll_count": wait["series"][0][1] if wait["series"] else None,
            **_rates(wait["series"], len(measured), t_ready),
            **resources,
            "outcomes": scrape1.get("outcomes"),
            "latency_in_backlog": histogram_percentiles(scrape0, scrape1),
            "loadavg_1m": [load_before, loadavg()],
            # events (internal ones included) each worker handled: with keys skewed (Zipf),
            # the worker holding the hottest member's partition gets more than its share, and
            # n workers cannot beat 1 / (that share) times one worker
            "events_by_worker": [scrape.get("events", 0.0) for scrape in each],
            # events counted by the workers' metrics, polled every 50 ms: (seconds from the
            # start of processing, count), to see a stall such as a rebalance inside the run
            "series": [(round(t - t_ready, 2), c) for t, c in wait["series"] if t >= t_ready],
        }
        log(f"{name}: {result['throughput']['events_per_s']:,.0f} events/s "
            f"({processed:.0f}/{len(measured)} in {elapsed:.1f} s; CPU {resources['cpu_s']} s; "
            f"peak RSS {resources['peak_rss_mib']} MiB; load {load_before})")
        if stages is not None:
            result["stages"] = stages.report()
            log(f"{name}: stages of the throughput run\n{result['stages']}")
        if not wait["done"]:
            result["note"] = "throughput run timed out; latency runs skipped"
            return result
        # 3. open-loop latency runs at fractions of the measured peak (one worker)
        if workers == 1 and opts.latency_duration > 0 and metric_based:
            peak = latency_peak(result, opts)
            continuation = fork(stream.base)
            if loyalty:  # the members joined so far (the measured part may have been trimmed)
                continuation.joined = {j["member"] for j in fed} | {
                    d["member"] for d in measured if d["type"] == "member.joined"}
            result["latency"] = []
            for fraction in opts.fractions:
                rate = min(peak * fraction, opts.max_rate)
                joins, docs = continuation.extend(max(1, int(rate * opts.latency_duration)))
                if not loyalty:
                    docs = minimal_documents(docs)
                done = cluster.scrape()["events"]
                if loyalty and joins:
                    cluster.feed_running(joins)
                    done += len(joins)
                    if not cluster.wait_events(done, opts.timeout)["done"]:
                        raise RuntimeError("latency warm-up joins not processed")
                before = cluster.scrape()
                watch = ProcessWatch(cluster.pids)
                sending = cluster.open_loop(docs, rate)
                wait = cluster.wait_events(before["events"] + len(docs),
                                           opts.latency_duration + 120)
                resources = watch.stop()
                after = cluster.scrape()
                sent_docs.extend(docs)
                entry = {"fraction": fraction, "target_rate": round(rate, 1),
                         "capped": peak * fraction > opts.max_rate, **sending,
                         "caught_up": wait["done"],
                         "drain_s": round(wait["t_done"] - wait["series"][0][0], 2),
                         **histogram_percentiles(before, after), **resources,
                         # what the member agent handled meanwhile, by event type (input
                         # and internal events: the histogram covers them all)
                         "handled_by_type": {k: int(v - before.get("types", {}).get(k, 0))
                                             for k, v in after.get("types", {}).items()
                                             if v - before.get("types", {}).get(k, 0)},
                         "loadavg_1m": loadavg()}
                result["latency"].append(entry)
                log(f"{name}: {fraction:.0%} of peak = {rate:,.0f}/s (sent at "
                    f"{sending['achieved_rate']:,.0f}/s): p50 {entry.get('p50_ms')} ms, "
                    f"p99 {entry.get('p99_ms')} ms, p999 {entry.get('p999_ms')} ms")
        if loyalty:
            result["verification"] = verify_loyalty(cluster, sent_docs)
        else:
            result["verification"] = verify_minimal_counters(cluster, sent_docs)
            if cluster.broker:
                time.sleep(1.0)
            else:
                cluster.stop()
            crossings = cluster.read_topic(f"{APP_ID}-crossings")
            if crossings is not None:
                # embedded latency runs ingest through concurrent POSTs: order not kept
                check = verify_crossings(crossings, sent_docs, ordered=bool(
                    cluster.broker) or not result.get("latency"))
                result["verification"]["crossings"] = check
                result["verification"]["exact"] &= check["exact"]
        if sink is not None:
            result["webhooks_received"] = sink.count()
        log(f"{name}: verification {'EXACT' if result['verification']['exact'] else 'MISMATCH'}"
            f" ({result['verification']['members_checked']} members sampled)")
        return result
    except Exception as exc:  # noqa: BLE001 - one engine failing must not lose the others
        result["error"] = f"{type(exc).__name__}: {exc}"
        for worker in cluster.workers:
            result.setdefault("log_tail", []).append(worker.log_tail(30))
        log(f"{name}: FAILED {result['error']}")
        return result
    finally:
        cluster.close()
        if sink is not None:
            sink.close()


class StageWatch:
    """The stage timers of a worker processing a preloaded log (bench/stage_timers.py): the
    last totals written before its first event is the start, so its startup is left out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start: dict | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            try:
                totals = stage_timers.read(self.path)
            except (OSError, ValueError):
                continue
            if totals["stages"][stage_timers.EVENT_STAGE][0] == 0:
                self.start = totals
            elif self.start is not None:
                return

    def report(self) -> str:
        self._stop.set()
        self._thread.join()
        if self.start is None:
            return "stage timers: no totals written before the first event"
        return stage_timers.report(self.start, stage_timers.read_after_next_write(self.path))


# -- peers ---------------------------------------------------------------------------------------

PEERS = {
    "faust-naive": "bench.peers.faust_naive",
    "quix": "bench.peers.quix",
    "raw-aiokafka-rocksdict": "bench.peers.raw",
}


def _read_status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _wait_peer(process: subprocess.Popen, status_path: Path, target: int, timeout: float,
               log_path: Path) -> dict:
    began = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"peer exited: {log_path.read_text(errors='replace')[-3000:]}")
        status = _read_status(status_path)
        if status and status["count"] >= target:
            time.sleep(0.4)  # one more status write, so its histogram holds every record
            return {"done": True, "status": _read_status(status_path) or status}
        if time.perf_counter() - began > timeout:
            return {"done": False, "status": status}
        time.sleep(0.2)


def verify_crossings(records: list[tuple[bytes, bytes]], documents: list[dict],
                     ordered: bool = True) -> dict:
    """The crossings against the expected ones. ``ordered=False`` when the events reached the
    log through concurrent requests (their order per member is then not the generated one):
    each crossing must then be of a crossing member, once, by one of its events, with
    ``total - amount(event) < 1000 <= total``."""
    _, expected = minimal_expected(documents)
    if not ordered:
        amounts = {d["id"]: (d["member"], d["data"]["amount"]) for d in documents}
        for key, value in records:
            doc = orjson.loads(value)
            member, amount = amounts.get(doc["event"], (None, 0.0))
            if member == doc["member"] and doc["total"] - amount < 1000 <= doc["total"] \
                    and doc["member"] in expected:
                expected[doc["member"]] = doc
    got: dict[str, list] = {}
    for key, value in records:
        doc = orjson.loads(value)
        got.setdefault(doc["member"], []).append(doc)
    duplicates = sum(len(v) - 1 for v in got.values() if len(v) > 1)
    missing = [m for m in expected if m not in got]
    extra = [m for m in got if m not in expected]
    wrong = [m for m, e in expected.items() if m in got and got[m][0] != e]
    return {"expected_crossings": len(expected), "got_records": len(records),
            "missing": len(missing), "extra": len(extra), "wrong": len(wrong),
            "duplicates": duplicates,
            "examples": {"missing": missing[:3], "extra": extra[:3],
                         "wrong": [(got[m][0], expected[m]) for m in wrong[:3]]},
            "exact": not (missing or extra or wrong or duplicates)}


def run_peer(stream: Stream, root: Path, name: str, events: int, opts) -> dict:
    result: dict = {"engine": name, "mode": "kafka", "workers": 1, "pipeline": "minimal"}
    broker = TansuBroker().start()
    process = None
    app = f"bench-{name.split('-')[0]}"
    data_dir = root / name
    data_dir.mkdir(parents=True, exist_ok=True)
    status_path = data_dir / "status.json"
    log_path = root / f"{name}.log"
    documents = stream.minimal[:events]
    sent_docs = list(documents)
    try:
        asyncio.run(kq.create_topics(broker.bootstrap, [f"{app}-events", f"{app}-crossings"],
                                     stream.partitions))
        records = to_records(documents, stream.partitions)
        result["preload_s"] = round(asyncio.run(kq.preload(
            broker.bootstrap, f"{app}-events", records)), 2)
        command = [sys.executable, "-m", PEERS[name], "--bootstrap", broker.bootstrap,
                   "--app", app, "--data-dir", str(data_dir / "state"),
                   "--status", str(status_path), "--partitions", str(stream.partitions)]
        if name == "faust-naive":
            command += ["--web-port", str(free_port()),
                        "--faust-options", json.dumps(TANSU_FAUST_OPTIONS)]
        (data_dir / "state").mkdir(exist_ok=True)
        load_before = loadavg()
        t_spawn = time.perf_counter()
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(command, cwd=REPO, stdout=log_file,
                                       stderr=subprocess.STDOUT)
        watch = ProcessWatch([process.pid])
        wait = _wait_peer(process, status_path, len(documents), opts.timeout, log_path)
        t_done = time.perf_counter()
        resources = watch.stop()
        status = wait["status"] or {"count": 0, "t_first": None, "t_last": None}
        span = (status["t_last"] - status["t_first"]) if status.get("t_first") else None
        result["throughput"] = {
            "events": len(documents), "completed": wait["done"],
            "completion": "peer status file (records processed)",
            "processing_s": None if span is None else round(span, 2),
            "events_per_s": round(status["count"] / span, 1) if span else 0.0,
            "events_per_s_incl_startup": round(status["count"] / (t_done - t_spawn), 1),
            **resources,
            "loadavg_1m": [load_before, loadavg()],
        }
        log(f"{name}: {result['throughput']['events_per_s']:,.0f} events/s "
            f"({status['count']}/{len(documents)}; CPU {resources['cpu_s']} s; "
            f"peak RSS {resources['peak_rss_mib']} MiB; load {load_before})")
        if not wait["done"]:
            result["note"] = "throughput run timed out; latency runs skipped"
            return result
        if opts.latency_duration > 0:
            peak = latency_peak(result, opts)
            continuation = fork(stream.base)
            if events < len(stream.events):  # continue right after the documents used
                continuation = LoyaltyWorkload(stream.base.seed, stream.partitions)
                continuation.extend(events)
            result["latency"] = []
            processed = status["count"]
            for fraction in opts.fractions:
                rate = min(peak * fraction, opts.max_rate)
                _, docs = continuation.extend(max(1, int(rate * opts.latency_duration)))
                docs = minimal_documents(docs)
                before = _read_status(status_path)
                watch = ProcessWatch([process.pid])
                sending = asyncio.run(kq.open_loop_kafka(
                    broker.bootstrap, f"{app}-events", to_records(docs, stream.partitions),
                    rate))
                t_sent = time.perf_counter()
                processed += len(docs)
                wait = _wait_peer(process, status_path, processed,
                                  opts.latency_duration + 120, log_path)
                resources = watch.stop()
                sent_docs.extend(docs)
                entry = {"fraction": fraction, "target_rate": round(rate, 1),
                         "capped": peak * fraction > opts.max_rate, **sending,
                         "caught_up": wait["done"],
                         "drain_s": round(time.perf_counter() - t_sent, 2),
                         **log_histogram_percentiles(before["hist"], wait["status"]["hist"]),
                         **resources, "loadavg_1m": loadavg()}
                result["latency"].append(entry)
                log(f"{name}: {fraction:.0%} of peak = {rate:,.0f}/s (sent at "
                    f"{sending['achieved_rate']:,.0f}/s): p50 {entry.get('p50_ms')} ms, "
                    f"p99 {entry.get('p99_ms')} ms, p999 {entry.get('p999_ms')} ms")
                if not wait["done"]:
                    break
        time.sleep(1.0)  # let the last crossings reach the broker
        crossings = asyncio.run(kq.read_all(broker.bootstrap, f"{app}-crossings",
                                            stream.partitions))
        result["verification"] = verify_crossings(crossings, sent_docs)
        log(f"{name}: verification "
            f"{'EXACT' if result['verification']['exact'] else 'MISMATCH'} "
            f"({len(crossings)} crossings, {result['verification']['expected_crossings']} "
            f"expected)")
        return result
    except Exception as exc:  # noqa: BLE001
        result["error"] = f"{type(exc).__name__}: {exc}"
        try:
            result["log_tail"] = log_path.read_text(errors="replace")[-3000:]
        except OSError:
            pass
        log(f"{name}: FAILED {result['error'][:500]}")
        return result
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        broker.stop()


# -- recovery of 1M members, and member queries under load ---------------------------------------

def _wipe_state(data_dir: Path) -> None:
    """Remove the worker's local table state, keep the embedded log (the changelogs)."""
    for child in data_dir.iterdir():
        if child.name != "log":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


def build_member_states(members: int, program_doc: dict,
                        encode) -> list[tuple[str, bytes, int]]:
    """Real member states: ``engine.apply`` of a ``member.joined`` per member (as the member
    agent would store them), encoded as the member table stores them
    (``encode``, from :func:`_member_codec`: ``tables.members.encode_stored``, the state with
    its lists' lengths, where the table has it)."""
    from engine.apply import apply
    from engine.events import parse_event
    from engine.program import compile_program
    from bench.engine_apply import START
    from engine.events import iso
    program = compile_program(program_doc)
    out = []
    when = iso(START - 86400)
    for i in range(members):
        member = f"M{i}"
        event = parse_event({"id": f"w{i}", "type": "member.joined", "member": member,
                             "time": when, "data": {"profile": {"name": f"N{i % 1000}",
                                                                "city": "Kraków"},
                                                    "channel": "pos"}}, START)
        state = apply(None, event, program, START).state
        out.append((member, encode(state), state.balance))
    return out


def _member_codec():
    """(encode a state -> table value, decode a table value -> MemberState), as
    tables/members.py stores a member: the state prefixed by its list lengths (``Stored``)."""
    from tables.members import Stored, decode_stored, encode_stored

    def encode(state) -> bytes:
        return encode_stored(Stored(state, (0, 0, 0)))
    return encode, lambda value: decode_stored(value).state


def run_recovery(root: Path, members: int, partitions: int, opts) -> dict:
    """Embedded mode: a worker whose member table's changelog holds ``members`` real member
    states; its local table state is wiped and the time to ``/readyz`` = 200 is measured. Then
    ``GET /v1/members/{id}`` under an open-loop load."""
    from agents.embedded_transport import partition_for
    from bench.engine_apply import PROGRAM
    from tables.embedded_log import EmbeddedLog
    result: dict = {"engine": "tillstream-embedded", "members": members}
    cluster = Cluster(root / "recovery", "embedded", 1, partitions)
    worker = cluster.workers[0]
    try:
        cluster.start()
        program, collections = program_collections()
        client = LoyaltyClient(worker)
        client.configure(program, **collections)
        # one member through the real path, to check the changelog layout we write
        client.send({"id": "probe-1", "type": "member.joined", "member": "PROBE1",
                     "data": {"profile": {"name": "P"}}})
        client.wait_member("PROBE1", lambda body: True)
        cluster.stop()
        began = time.perf_counter()
        encode, decode = _member_codec()
        states = build_member_states(members, PROGRAM, encode)
        result["build_states_s"] = round(time.perf_counter() - began, 1)
        log_ = EmbeddedLog.open(worker.data_dir / "log")
        try:
            changelogs = [t for t in log_.topics() if t.endswith("-members-changelog")]
            if len(changelogs) != 1:
                raise RuntimeError(f"member changelog topic not found: {sorted(log_.topics())}")
            topic = changelogs[0]
            probe = [r for p in range(partitions)
                     for r in log_.read(topic, p, 0, 10_000) if r.key == b"PROBE1"]
            try:
                ok = bool(probe) and decode(probe[-1].value).id == "PROBE1"
            except ValueError:
                ok = False
            if not ok:
                raise RuntimeError("the member changelog does not hold key = member id, value "
                                   "= the table's member encoding; layout changed?")
            began = time.perf_counter()
            by_partition: dict[int, list] = {}
            for member, value, _ in states:
                key = member.encode()
                by_partition.setdefault(partition_for(key, partitions), []).append(
                    (key, value, None, ()))
            for partition, rows in by_partition.items():
                for start in range(0, len(rows), 5000):
                    log_.append_many(topic, partition, rows[start:start + 5000])
            result["changelog_topic"] = topic
            result["write_changelog_s"] = round(time.perf_counter() - began, 1)
        finally:
            log_.close()
        _wipe_state(worker.data_dir)
        load_before = loadavg()
        t_spawn = time.perf_counter()
        _spawn(worker)
        watch = ProcessWatch([worker.process.pid])
        worker.wait_ready(opts.timeout)
        recovery_s = time.perf_counter() - t_spawn
        resources = watch.stop()
        result["recovery"] = {"seconds_to_ready": round(recovery_s, 2), **resources,
                              "loadavg_1m": [load_before, loadavg()]}
        log(f"recovery of {members:,} members: {recovery_s:.1f} s to ready "
            f"(CPU {resources['cpu_s']} s, peak RSS {resources['peak_rss_mib']} MiB)")
        rng = random.Random(3)
        expected = {m: b for m, _, b in rng.sample(states, min(100, len(states)))}
        bad = []
        for member, balance in expected.items():
            status, body = http("GET", f"{worker.url}/v1/members/{member}", timeout=10)
            if status != 200 or body.get("balance") != balance:
                bad.append({"member": member, "status": status,
                            "balance": body.get("balance"), "expected": balance})
        result["verification"] = {"members_checked": len(expected), "mismatches": len(bad),
                                  "first_mismatches": bad[:5], "exact": not bad}
        ids = [m for m, _, _ in states]
        del states
        # The first seconds after ready have a one-off tail (≈ 125 ms p99 over 5 s on 200k
        # members, then 3–5 ms): measured apart, then the steady figure.
        result["http_first_5s"] = asyncio.run(http_load(worker.url, ids, opts.http_rate,
                                                        5.0, worker.process.pid))
        log(f"GET /v1/members/{{id}} in the first 5 s after ready: p50 "
            f"{result['http_first_5s'].get('p50_ms')} ms, p99 "
            f"{result['http_first_5s'].get('p99_ms')} ms")
        result["http"] = asyncio.run(http_load(worker.url, ids, opts.http_rate,
                                               opts.http_duration, worker.process.pid))
        log(f"GET /v1/members/{{id}} at {opts.http_rate}/s: p50 {result['http'].get('p50_ms')}"
            f" ms, p99 {result['http'].get('p99_ms')} ms "
            f"({result['http']['errors']} errors, achieved {result['http']['achieved_rate']}/s)")
        return result
    except Exception as exc:  # noqa: BLE001
        import traceback
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()[-3000:]
        result["log_tail"] = worker.log_tail(30)
        log(f"recovery: FAILED {result['error'][:500]}")
        return result
    finally:
        cluster.close()


async def http_load(url: str, members: list[str], rate: float, duration: float,
                    pid: int) -> dict:
    """Open-loop ``GET /v1/members/{id}``: requests start on a fixed schedule (1/rate apart),
    latency is measured from the scheduled start (so a stalled server is not hidden)."""
    import aiohttp
    rng = random.Random(4)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    watch = ProcessWatch([pid])
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(member: str, scheduled: float) -> None:
            nonlocal errors
            try:
                async with session.get(f"{url}/v1/members/{member}") as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
            except Exception:  # noqa: BLE001
                errors += 1
            latencies.append(time.perf_counter() - scheduled)
        total = int(rate * duration)
        tasks = []
        began = time.perf_counter()
        for i in range(total):
            scheduled = began + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(rng.choice(members), scheduled)))
        send_s = time.perf_counter() - began
        await asyncio.gather(*tasks)
    resources = watch.stop()
    return {"rate": rate, "duration_s": duration, "requests": total,
            "achieved_rate": round(total / send_s, 1), "errors": errors,
            **exact_percentiles([1000 * seconds for seconds in latencies]),
            "max_ms": round(1000 * max(latencies), 2), "worker": resources,
            "loadavg_1m": loadavg()}
