"""The analytics agent: sums the deltas the member agent sends for each applied event into
aggregate rows keyed by brand and dimension (engine/analytics.py says what is counted).

``<app>-analytics`` is keyed by brand, so one brand's aggregates live on one partition and a
query for them is routed to one worker. The member agent sends one record per brand per batch
of events (agents/member_agent.py ``BatchAnalytics``): the events partition and, per event,
its offset and deltas. The agent remembers the
highest source offset applied per events partition and skips events at or below it, so a
member event replayed after a crash (in a batch cut differently) is never counted twice.

It takes the batch path too (agents/batching.py), and its rows are flushed at most every
``FLUSH_INTERVAL`` seconds (or once ``FLUSH_AFTER_RECORDS`` records wait), not per fetched
batch: dashboards read them, no effect waits on them, and an open-loop stream (small batches)
otherwise flushed the same rows again and again — two changelog records per event. The records
are acknowledged only once their rows are flushed, so a crash replays them (and the source
offsets skip what was counted); a worker giving partitions up flushes first. Queries read the
rows not yet flushed too.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import faust
import orjson

from agents.batching import batch_agent, revoke_hooks_of
from agents.topics import EVENT_RETENTION_SECONDS
from engine.analytics import sum_fresh
from tables.batch_store import BatchStore

#: Days of activity history kept (a window query reaches at most this far back).
ACTIVITY_DAYS_KEPT = 400
#: Seconds aggregate rows may wait before they are flushed.
FLUSH_INTERVAL = 1.0
#: Records whose rows wait before a flush is due regardless of the interval.
FLUSH_AFTER_RECORDS = 2000


def analytics_topic(app: faust.App) -> faust.TopicT:
    return app.topic(f"{app.conf.id}-analytics", key_serializer="raw", value_serializer="raw",
                     retention=EVENT_RETENTION_SECONDS, deleting=True)


def row_key(brand: str, dimension: str, day: str | None = None) -> bytes:
    key = f"{brand}\0{dimension}" if day is None else f"{brand}\0{dimension}\0{day}"
    return key.encode()


class Aggregates:
    """The aggregates, one key per brand, dimension (and day) and value —
    ``<brand>\0<dimension>[\0<day>]\0<value>`` -> the value's metrics — so that an event
    rewrites a few small keys, however many tills or days a brand has. A dimension's values
    are read with one prefix scan on the brand's partition."""

    def __init__(self, app: faust.App) -> None:
        self.store = BatchStore(app, "analytics")
        #: the faust table underneath (routing of queries to the worker owning a brand)
        self.table = self.store.table

    def row(self, key: bytes) -> dict:
        """Every value of a dimension (``row_key``) with its metrics."""
        prefix = key + b"\0"
        return {name[len(prefix):].decode(): metrics
                for name, metrics in self.store.scan_live(prefix, orjson.loads).items()}

    def apply(self, brand: str, partition: int, keys: list, events: list) -> int:
        """Add the deltas of the events of one events partition not counted yet (``keys``:
        ``[dimension, value, metric]`` by index; ``events``: ``[offset, [index, amount, ...]]``
        in offset order); returns how many events were counted."""
        store = self.store
        offsets_key = row_key(brand, "offsets")
        offsets = store.get_live(offsets_key, orjson.loads) or {}
        sums, fresh = sum_fresh(events, offsets.get(str(partition), -1))
        if not fresh:
            return 0
        touched: dict[bytes, dict] = {}
        new_activity_day = False
        for index, amount in sums.items():
            dimension, value, metric = keys[index]
            if dimension == "till_hour":
                till, _, hour = value.rpartition("|")
                key = row_key(brand, dimension, hour[:10]) + b"\0" + f"{till}|{hour[11:]}".encode()
            else:
                key = row_key(brand, dimension) + b"\0" + value.encode()
            metrics = touched.get(key)
            if metrics is None:
                metrics = store.get_live(key, orjson.loads)
                if metrics is None:
                    metrics = {}
                    new_activity_day |= dimension == "last_active_day"
                touched[key] = metrics
            metrics[metric] = metrics.get(metric, 0) + amount
        for key, metrics in touched.items():
            store.put_live(key, metrics, orjson.dumps)
        if new_activity_day:
            self._forget_old_activity(brand)
        offsets[str(partition)] = events[-1][0]
        store.put_live(offsets_key, offsets, orjson.dumps)
        return fresh

    def _forget_old_activity(self, brand: str) -> None:
        """Drop activity days past the kept history (checked when a new day first appears)."""
        oldest = (datetime.now(timezone.utc)
                  - timedelta(days=ACTIVITY_DAYS_KEPT)).strftime("%Y-%m-%d")
        prefix = row_key(brand, "last_active_day") + b"\0"
        for key in self.store.scan_live(prefix, orjson.loads):
            if key[len(prefix):].decode().rpartition("|")[2] < oldest:
                self.store.pop(key)


class DeferredFlush:
    """The analytics batch handler: applies records to the rows, flushes them when due, and
    only then acknowledges the records (``self_acking`` on the batch path)."""

    def __init__(self, app: faust.App, aggregates: Aggregates,
                 interval: float = FLUSH_INTERVAL,
                 after_records: int = FLUSH_AFTER_RECORDS) -> None:
        self.app = app
        self.aggregates = aggregates
        self.interval = interval
        self.after_records = after_records
        #: (partition, first offset, last offset, consumer generation) applied, not flushed
        self._waiting: list[tuple] = []
        self._records = 0
        self._flushed_at = time.monotonic()

    async def handle(self, tp, messages: list) -> None:
        store = self.aggregates.store
        store.use_partition(tp.partition)
        try:
            for message in messages:
                record = orjson.loads(message.value)
                self.aggregates.apply(message.key.decode(), record["partition"],
                                      record["keys"], record["events"])
        finally:
            store.use_partition(None)
        self._waiting.append((tp, messages[0].offset, messages[-1].offset,
                              self.app.consumer_generation_id))
        self._records += len(messages)
        if self._records >= self.after_records:
            await self.flush()

    def due(self) -> bool:
        return bool(self._waiting) and time.monotonic() - self._flushed_at >= self.interval

    async def flush(self) -> None:
        """Flush the rows, then acknowledge the records applied to them."""
        waiting, self._waiting = self._waiting, []
        self._records = 0
        self._flushed_at = time.monotonic()
        try:
            await self.aggregates.store.flush()
        except BaseException:
            self._waiting = waiting + self._waiting
            raise
        consumer = self.app.consumer
        for tp, first, last, generation in waiting:
            consumer.acknowledge(tp, first, generation, last=last)


def register(app: faust.App) -> tuple[faust.TopicT, Aggregates]:
    topic = analytics_topic(app)
    aggregates = Aggregates(app)
    deferred = DeferredFlush(app, aggregates)
    batch_agent(app, topic, "analytics", deferred.handle, self_acking=True)
    revoke_hooks_of(app).append(deferred.flush)

    @app.timer(interval=FLUSH_INTERVAL / 4)
    async def flush_analytics_rows() -> None:
        if deferred.due():
            await deferred.flush()

    return topic, aggregates
