"""The quix-streams peer: a StreamingDataFrame with RocksDB state (changelogged), at-least-once.

``apply(stateful=True, metadata=True)`` keeps the member's sum in ``state`` and returns the
crossing record (or None); ``filter`` drops the Nones and ``to_topic`` writes the crossings.
"""

from __future__ import annotations

import logging
import time

from quixstreams import Application

from bench.peers.common import THRESHOLD, Stats, parser


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--guarantee", default="at-least-once")
    args = p.parse_args()
    stats = Stats(args.status)
    app = Application(broker_address=args.bootstrap, consumer_group=args.app,
                      auto_offset_reset="earliest", state_dir=args.data_dir,
                      processing_guarantee=args.guarantee, loglevel="WARNING",
                      consumer_poll_timeout=0.1)
    events = app.topic(f"{args.app}-events", key_deserializer="bytes", value_deserializer="json")
    crossings = app.topic(f"{args.app}-crossings", key_serializer="bytes",
                          value_serializer="json")
    record = stats.record
    clock = time.time

    def add(value, key, timestamp, headers, state):
        before = state.get("sum", 0.0)
        after = before + value["data"]["amount"]
        state.set("sum", after)
        record(timestamp / 1000.0, clock())
        if before < THRESHOLD <= after:
            return {"member": key.decode(), "total": after, "event": value["id"]}
        return None

    sdf = app.dataframe(events)
    sdf = sdf.apply(add, stateful=True, metadata=True).filter(lambda v: v is not None)
    sdf.to_topic(crossings)
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    try:
        app.run()
    finally:
        stats.close()


if __name__ == "__main__":
    main()
