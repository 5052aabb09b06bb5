"""tansu alone: how long a record takes from producer to consumer, over a run, with no engine.

``python -m bench.tansu_floor --rate 1000 --seconds 60 [--preload 0]``: starts tansu in memory
on a free port, creates the events topic (4 partitions), optionally preloads ``--preload``
records in large batches, then sends the loyalty workload's events at ``rate`` on the open-loop
schedule of ``make bench`` (bench.kafka.open_loop_kafka: a record batch every 5 ms, linger
1 ms) while a plain aiokafka consumer with the workers' 10 ms fetch wait reads them
(bench.kafka.DeliveryWatch). Prints produce-to-consume percentiles per window of the run.

Why: tansu 0.6's memory storage answers fetches more slowly as it holds more records, so the
latency any consumer sees on it grows during a run; an engine's latency on tansu means little
without this floor beside it.
"""

from __future__ import annotations

import argparse
import asyncio

from bench import kafka as kq
from bench.measure import exact_percentiles
from bench.workload import LoyaltyWorkload, to_records
from tests.support import TansuBroker

TOPIC = "tillstream-events"


async def measure(bootstrap: str, rate: float, seconds: float, preload: int,
                  window: float) -> list[dict]:
    await kq.create_topics(bootstrap, [TOPIC], 4)
    _, documents = LoyaltyWorkload(7, 4).extend(preload + int(rate * seconds))
    records = to_records(documents, 4)
    if preload:
        await kq.preload(bootstrap, TOPIC, records[:preload])
    delivery = kq.DeliveryWatch(bootstrap, TOPIC)
    sending = await kq.open_loop_kafka(bootstrap, TOPIC, records[preload:], rate,
                                       delivery=delivery)
    rows = []
    start = 0.0
    while start < seconds:
        ages = [age for at, age in delivery.ages if start <= at < start + window]
        rows.append({"from_s": start, "to_s": start + window, "records": len(ages),
                     **exact_percentiles(ages)})
        start += window
    rows.append({"whole_run": True, "achieved_rate": sending["achieved_rate"],
                 **sending["broker"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tansu_floor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--preload", type=int, default=0,
                        help="records written in large batches before the run")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per printed row")
    opts = parser.parse_args()
    broker = TansuBroker().start()
    try:
        for row in asyncio.run(measure(broker.bootstrap, opts.rate, opts.seconds, opts.preload,
                                       opts.window)):
            print(row)
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
