"""The analytics agent: sums the deltas the member agent sends for each applied event into
aggregate rows keyed by brand and dimension (engine/analytics.py says what is counted).

``<app>-analytics`` is keyed by brand, so one brand's aggregates live on one partition and a
query for them is routed to one worker. The member agent sends one record per brand per batch
of events: the events partition and, per event, its offset and deltas. The agent remembers the
highest source offset applied per events partition and skips events at or below it, so a
member event replayed after a crash (in a batch cut differently) is never counted twice. It
takes the batch path too (agents/batching.py): its rows are flushed once per fetched batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import faust
import orjson

from agents.batching import handlers_of
from agents.topics import EVENT_RETENTION_SECONDS
from tables.batch_store import BatchStore

#: Days of activity history kept (a window query reaches at most this far back).
ACTIVITY_DAYS_KEPT = 400


def analytics_topic(app: faust.App) -> faust.TopicT:
    return app.topic(f"{app.conf.id}-analytics", key_serializer="raw", value_serializer="raw",
                     retention=EVENT_RETENTION_SECONDS, deleting=True)


def row_key(brand: str, dimension: str, day: str | None = None) -> bytes:
    key = f"{brand}\0{dimension}" if day is None else f"{brand}\0{dimension}\0{day}"
    return key.encode()


class Aggregates:
    """The aggregate rows; written by the analytics agent, read by the analytics API."""

    def __init__(self, app: faust.App) -> None:
        self.store = BatchStore(app, "analytics")
        #: the faust table underneath (routing of queries to the worker owning a brand)
        self.table = self.store.table

    def row(self, key: bytes) -> dict:
        return self.store.get_live(key, orjson.loads) or {}

    def apply(self, brand: str, partition: int, events: list) -> int:
        """Add the deltas of the events (``[offset, deltas]``, in offset order) of one events
        partition not counted yet; returns how many were counted."""
        offsets_key = row_key(brand, "offsets")
        offsets = self.row(offsets_key)
        done = offsets.get(str(partition), -1)
        fresh = [deltas for offset, deltas in events if offset > done]
        if not fresh:
            return 0
        rows: dict[bytes, dict] = {}
        for dimension, value, metric, amount in (d for deltas in fresh for d in deltas):
            if dimension == "till_hour":
                till, _, hour = value.rpartition("|")
                key, value = row_key(brand, dimension, hour[:10]), f"{till}|{hour[11:]}"
            else:
                key = row_key(brand, dimension)
            if key not in rows:
                rows[key] = self.row(key)
            metrics = rows[key].setdefault(value, {})
            metrics[metric] = metrics.get(metric, 0) + amount
        activity = rows.get(row_key(brand, "last_active_day"))
        if activity is not None:
            oldest = (datetime.now(timezone.utc)
                      - timedelta(days=ACTIVITY_DAYS_KEPT)).strftime("%Y-%m-%d")
            for value in [v for v in activity if v.rpartition("|")[2] < oldest]:
                del activity[value]
        for key, row in rows.items():
            self.store.put_live(key, row, orjson.dumps)
        offsets[str(partition)] = events[-1][0]
        self.store.put_live(offsets_key, offsets, orjson.dumps)
        return len(fresh)


def register(app: faust.App) -> tuple[faust.TopicT, Aggregates]:
    topic = analytics_topic(app)
    aggregates = Aggregates(app)

    async def aggregate(tp, messages: list) -> None:
        store = aggregates.store
        store.use_partition(tp.partition)
        try:
            for message in messages:
                record = orjson.loads(message.value)
                aggregates.apply(message.key.decode(), record["partition"], record["events"])
            await store.flush()
        finally:
            store.use_partition(None)

    handlers_of(app)[topic.get_topic_name()] = aggregate

    @app.agent(topic, name="analytics")
    async def subscribe(stream):
        """Declares the subscription to faust; the records take the batch path."""
        async for _ in stream:
            raise RuntimeError("analytics records must take the batch path")

    return topic, aggregates
