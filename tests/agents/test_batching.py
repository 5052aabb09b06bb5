"""The batch path's delivery of a fetch: a grouped handler takes every partition of its topic
in one call, a plain one partition by partition; offsets are acknowledged once handled, and a
batch fetched before a rebalance is dropped."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import faust
from faust.types import TP

from agents.batching import BatchDrainMixin, BatchRecord, batch_agent, handlers_of

EVENTS = "batching-test-events"


class Consumer(BatchDrainMixin):
    """The consumer state the batch path reads and writes, without a transport."""

    def __init__(self, app, assigned: set[TP]) -> None:
        self.app = app
        self.assigned = assigned
        self._read_offset = defaultdict(lambda: None)
        self._committed_offset = defaultdict(lambda: None)
        self._acked_index = defaultdict(set)
        self._acked = defaultdict(list)
        self._n_acked = 0

    def assignment(self) -> set[TP]:
        return self.assigned

    @staticmethod
    def _to_batch_record(record: BatchRecord) -> BatchRecord:
        return record


def records(partition: int, *offsets: int) -> list[BatchRecord]:
    return [BatchRecord(EVENTS, partition, offset, None, b"m", b"{}") for offset in offsets]


def make_app(grouped: bool):
    app = faust.App("batching-test", broker="kafka://127.0.0.1:1")
    calls: list = []

    if grouped:
        async def handler(batches):
            calls.append([(tp.partition, [r.offset for r in batch]) for tp, batch in batches])
    else:
        async def handler(tp, batch):
            calls.append([(tp.partition, [r.offset for r in batch])])

    batch_agent(app, app.topic(EVENTS), "events", handler, grouped=grouped)
    return app, calls


def fetch() -> list[tuple[TP, list[BatchRecord]]]:
    return [(TP(EVENTS, 0), records(0, 5, 6)), (TP(EVENTS, 1), records(1, 9)),
            (TP(EVENTS, 2), records(2, 3))]


def deliver(consumer: Consumer, generation: int) -> None:
    """The fetch's batches of EVENTS to its handler, as the drain loop does."""
    handler = handlers_of(consumer.app)[EVENTS]
    asyncio.run(consumer._deliver_batches(handler, EVENTS, fetch(), generation))


def test_a_grouped_handler_takes_every_assigned_partition_of_a_fetch_in_one_call():
    app, calls = make_app(grouped=True)
    consumer = Consumer(app, {TP(EVENTS, 0), TP(EVENTS, 1)})   # partition 2 is not ours
    deliver(consumer, app.consumer_generation_id)
    assert calls == [[(0, [5, 6]), (1, [9])]]
    assert consumer._acked[TP(EVENTS, 0)] == [5, 6] and consumer._acked[TP(EVENTS, 1)] == [9]
    assert consumer._read_offset[TP(EVENTS, 1)] == 9 and consumer._n_acked == 3


def test_a_plain_handler_takes_the_partitions_one_by_one():
    app, calls = make_app(grouped=False)
    consumer = Consumer(app, {TP(EVENTS, 0), TP(EVENTS, 1), TP(EVENTS, 2)})
    deliver(consumer, app.consumer_generation_id)
    assert calls == [[(0, [5, 6])], [(1, [9])], [(2, [3])]]
    assert consumer._n_acked == 4


def test_records_before_the_read_position_are_not_handled_again():
    app, calls = make_app(grouped=True)
    consumer = Consumer(app, {TP(EVENTS, 0), TP(EVENTS, 1)})
    consumer._read_offset[TP(EVENTS, 0)] = 6      # as after a seek to committed offset 6
    deliver(consumer, app.consumer_generation_id)
    assert calls == [[(0, [6]), (1, [9])]]


def test_a_fetch_from_before_a_rebalance_is_dropped():
    app, calls = make_app(grouped=True)
    consumer = Consumer(app, {TP(EVENTS, 0), TP(EVENTS, 1)})
    fetched_in = app.consumer_generation_id
    app.consumer_generation_id = fetched_in + 1
    deliver(consumer, fetched_in)
    assert calls == [] and consumer._n_acked == 0
