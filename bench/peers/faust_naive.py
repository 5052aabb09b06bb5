"""The naive faust peer: one agent and a RocksDB-backed faust Table (the textbook way).

Per record: decode JSON, read the member's sum from the table, add, write it back (faust sends
one changelog record per write), and on the first crossing of 1000 send a record to
``<app>-crossings``. faust's at-least-once semantics (a crash may replay since the last
commit); the settings for tansu are the project's ``TANSU_FAUST_OPTIONS``.
"""

from __future__ import annotations

import json
import sys
import time

import faust
import orjson

from bench.peers.common import THRESHOLD, Stats, parser


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--web-port", type=int, required=True)
    p.add_argument("--faust-options", default="{}")
    args = p.parse_args()
    stats = Stats(args.status)
    app = faust.App(args.app, broker=f"kafka://{args.bootstrap}", store="rocksdb://",
                    datadir=args.data_dir, web_port=args.web_port, web_bind="127.0.0.1",
                    topic_partitions=args.partitions, topic_replication_factor=1,
                    key_serializer="raw", value_serializer="raw",
                    consumer_auto_offset_reset="earliest", **json.loads(args.faust_options))
    events = app.topic(f"{args.app}-events", key_serializer="raw", value_serializer="raw")
    crossings = app.topic(f"{args.app}-crossings", key_serializer="raw", value_serializer="raw")
    sums = app.Table("sums", default=float, key_type=bytes, value_type=float,
                     extra_topic_configs={"retention.ms": -1})

    @app.agent(events)
    async def add(stream):
        async for event in stream.events():
            document = orjson.loads(event.value)
            key = event.key
            before = sums[key]
            after = before + document["data"]["amount"]
            sums[key] = after
            if before < THRESHOLD <= after:
                await crossings.send(key=key, value=orjson.dumps(
                    {"member": key.decode(), "total": after, "event": document["id"]}))
            stats.record(event.message.timestamp, time.time())

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    try:
        app.main()
    finally:
        stats.close()


if __name__ == "__main__":
    main()
