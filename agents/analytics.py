"""The analytics agent: sums the deltas the member agent sends for each applied event into
aggregate rows keyed by brand and dimension (engine/analytics.py says what is counted).

``<app>-analytics`` is keyed by brand, so one brand's aggregates live on one partition and a
query for them is routed to one worker. Each record carries its source (events partition and
offset); the agent remembers the highest source offset applied per events partition, so a
member event replayed after a crash is never counted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import faust
import orjson

from agents.topics import CHANGELOG_CONFIGS, EVENT_RETENTION_SECONDS

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
        self.table = app.Table("analytics", key_type=bytes, value_type=bytes, default=None,
                               extra_topic_configs=CHANGELOG_CONFIGS)

    def row(self, key: bytes) -> dict:
        raw = self.table.get(key)
        return {} if raw is None else orjson.loads(raw)

    def apply(self, brand: str, source: tuple[int, int], deltas: list) -> bool:
        """Add one event's deltas; False when that source record was already counted."""
        offsets_key = row_key(brand, "offsets")
        offsets = self.row(offsets_key)
        partition, offset = str(source[0]), source[1]
        if offsets.get(partition, -1) >= offset:
            return False
        rows: dict[bytes, dict] = {}
        for dimension, value, metric, amount in deltas:
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
            self.table[key] = orjson.dumps(row)
        offsets[partition] = offset
        self.table[offsets_key] = orjson.dumps(offsets)
        return True


def register(app: faust.App) -> tuple[faust.TopicT, Aggregates]:
    topic = analytics_topic(app)
    aggregates = Aggregates(app)

    @app.agent(topic, name="analytics")
    async def aggregate(stream):
        async for event in stream.events():
            record = orjson.loads(event.value)
            aggregates.apply(event.key.decode(), tuple(record["source"]), record["deltas"])

    return topic, aggregates
