"""The analytics agent flushes its rows when due, not per batch, and acknowledges records only
once their rows are durable."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson

from agents.analytics import Aggregates, DeferredFlush, row_key
from agents.embedded_transport import partition_for
from tests.tables.test_batch_store import FakeLog, FakeTable


class FakeConsumer:
    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    def acknowledge(self, tp, offset, generation, last=None):
        self.acked.append((offset, last))


def make_deferred(tmp_path, after_records: int):
    table = FakeTable(tmp_path)
    app = SimpleNamespace(conf=SimpleNamespace(topic_partitions=4), producer=FakeLog(),
                          Table=lambda name, **options: table, consumer_generation_id=1,
                          consumer=FakeConsumer())
    aggregates = Aggregates(app)
    return DeferredFlush(app, aggregates, interval=3600, after_records=after_records), table


def record(offset: int, points: int) -> SimpleNamespace:
    value = orjson.dumps({"partition": 0, "keys": [["total", "all", "points_issued"]],
                          "events": [[offset, [0, points]]]})
    return SimpleNamespace(value=value, key=b"acme", offset=offset)


#: The analytics topic is keyed by brand: a brand's records and rows are on its partition.
ACME = partition_for(b"acme", 4)


def test_rows_wait_in_the_cache_and_records_are_acknowledged_after_the_flush(tmp_path):
    deferred, table = make_deferred(tmp_path, after_records=3)
    tp = SimpleNamespace(topic="app-analytics", partition=ACME)
    row = row_key("acme", "total") + b"\0all"

    async def scenario():
        await deferred.handle(tp, [record(0, 10), record(1, 5)])
        assert deferred.aggregates.row(row_key("acme", "total")) == {
            "all": {"points_issued": 15}}, "queries see rows not flushed yet"
        assert table.db(ACME).get(row) is None and deferred.app.consumer.acked == []
        await deferred.handle(tp, [record(2, 1)])        # the third record: a flush is due

    asyncio.run(scenario())
    assert orjson.loads(table.db(ACME)[row]) == {"points_issued": 16}
    assert deferred.app.consumer.acked == [(0, 1), (2, 2)]


def test_a_failed_flush_keeps_the_records_for_the_next_one(tmp_path):
    deferred, table = make_deferred(tmp_path, after_records=100)
    tp = SimpleNamespace(topic="app-analytics", partition=ACME)

    async def failing_send(*args, **kwargs):
        raise OSError("broker gone")

    async def scenario():
        await deferred.handle(tp, [record(0, 10)])
        deferred.app.producer.send = failing_send
        try:
            await deferred.flush()
        except OSError:
            pass
        assert deferred.app.consumer.acked == []
        assert deferred._waiting and deferred.due() is False

    asyncio.run(scenario())
