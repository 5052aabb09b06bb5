"""One open-loop latency run on a loyalty worker, at a rate you choose.

``python -m bench.open_loop --rate 2000 --seconds 20 [--warm 60000]``: configures the benchmark
program (webhooks to a local receiver), feeds the joins the events need, then ``--warm`` events
as fast as the worker takes them (a worker with that much state and log behind it), then sends
``rate × seconds`` events over ``POST /v1/events`` on a fixed schedule (a request every 20 ms
as ``make bench`` does, or every ``--tick`` seconds) and prints the event-to-effect percentiles
and the CPU seconds of the worker's threads over the run. ``make bench`` measures at fractions
of a measured peak; this measures at a fixed rate, so two versions of the code can be compared
at the same load.

``--mode kafka`` runs the worker on a tansu broker started for the run; the events then go
straight to the events topic from an aiokafka producer (records due every 5 ms, linger 1 ms;
``--tick`` is for HTTP), as tills would send them to Kafka, instead of over HTTP. With
``--watch-broker`` a plain consumer also times tansu's own delivery of those events
(``broker``): on tansu 0.6 it grows during a run (``python -m bench.tansu_floor``). With
``--stages`` the worker runs with timers on its stages and the run ends with a table of where
its event-loop thread spent its time, in µs per event (bench/stage_timers.py); ``python -m
bench --only tillstream-embedded --stages`` prints the same for a throughput run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import stage_timers
from bench.measure import ProcessWatch, cpu_seconds, histogram_percentiles
from bench.stream import Cluster, Stream, WebhookSink, joins_needed
from bench.workload import program_collections
from tests.support import LoyaltyClient


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name (the event loop is ``python``, RocksDB's are
    ``rocksdb:...``)."""
    out: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + cpu_seconds(pid, int(tid))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.open_loop", description=__doc__)
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm", type=int, default=0, help="events fed before the run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tick", type=float, default=0.02,
                        help="seconds between requests (each carries rate x tick events)")
    parser.add_argument("--mode", choices=("embedded", "kafka"), default="embedded")
    parser.add_argument("--stages", action="store_true",
                        help="embedded: time the worker's stages (bench/stage_timers.py) and "
                             "print where its time went during the run, per event")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="record the worker with py-spy during the run (--native, 100 Hz, "
                             "collapsed stacks, as py-spy's 'raw' format writes them) into FILE")
    parser.add_argument("--watch-broker", action="store_true",
                        help="kafka: a plain consumer times the broker's own delivery of the "
                             "events meanwhile (it adds its fetches to the broker's load)")
    opts = parser.parse_args()
    count = int(opts.rate * opts.seconds)
    stream = Stream(events=count + opts.warm + 10, seed=opts.seed, partitions=4)
    root = Path(tempfile.mkdtemp(prefix="open-loop-"))
    stage_file = root / "stages.json" if opts.stages else None
    cluster = Cluster(root, opts.mode, 1, 4, "loyalty", stage_timers=stage_file)
    sink = WebhookSink()
    try:
        cluster.start()
        program, collections = program_collections()
        sink.point_at(collections)
        LoyaltyClient(cluster.workers[0]).configure(program, **collections)
        time.sleep(1.0)
        docs = stream.events[opts.warm:opts.warm + count]
        joins = stream.joins[:joins_needed(stream, stream.events[:opts.warm + count])]
        cluster.feed_running(joins)
        if not cluster.wait_events(len(joins), 600)["done"]:
            raise SystemExit("joins not processed")
        if opts.warm:
            done = cluster.scrape()["events"]
            cluster.feed_running(stream.events[:opts.warm])
            if not cluster.wait_events(done + opts.warm, 600)["done"]:
                raise SystemExit("warm-up events not processed")
        time.sleep(2.0)
        before = cluster.scrape()
        stages_before = stage_timers.read(stage_file) if stage_file else None
        pid = cluster.pids[0]
        threads_before = thread_cpu(pid)
        watch = ProcessWatch(cluster.pids)
        spy = None if not opts.py_spy else subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid),
             "--native", "--format", "raw", "--rate", "100",
             "--duration", str(max(1, round(opts.seconds))), "--output", opts.py_spy],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sending = cluster.open_loop(docs, opts.rate, tick=opts.tick,
                                    watch_broker=opts.watch_broker)
        wait = cluster.wait_events(before["events"] + len(docs), opts.seconds + 120)
        if spy is not None:
            spy.wait(60)
        resources = watch.stop()
        threads = {name: round(seconds - threads_before.get(name, 0.0), 2)
                   for name, seconds in thread_cpu(pid).items()
                   if seconds - threads_before.get(name, 0.0) > 0.05}
        after = cluster.scrape()
        if stage_file:
            print(stage_timers.report(stages_before, stage_timers.read_after_next_write(
                stage_file)))
        print({"mode": opts.mode, "rate": opts.rate, "seconds": opts.seconds, "warm": opts.warm,
               "tick": opts.tick, "achieved_rate": sending["achieved_rate"],
               "caught_up": wait["done"],
               **histogram_percentiles(before, after), **resources,
               "thread_cpu_s": threads, "webhooks_received": sink.count(),
               **({"broker": sending["broker"]} if "broker" in sending else {})})
    finally:
        cluster.close()
        sink.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
