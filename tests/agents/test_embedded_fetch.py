"""The embedded consumer's fetch: the events topic's records come first, and the topics its
effects feed wait for them at most ``DEFER_AT_MOST``."""

from __future__ import annotations

import faust
from faust.types import TP

from agents import embedded_transport
from agents.batching import batch_agent

EVENTS = TP("fetch-test-events", 0)
OUTBOX = TP("fetch-test-outbox", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_consumer(tmp_path, monkeypatch):
    """A consumer of both topics at offset 0, on a clock the test moves; the events topic is
    urgent, as the member agent registers it."""
    embedded_transport.register()
    app = faust.App("fetch-test", broker=f"embedded://{tmp_path / 'log'}",
                    datadir=str(tmp_path), topic_partitions=1)

    async def handler(batches):
        raise AssertionError("not delivered in these tests")

    batch_agent(app, app.topic(EVENTS.topic), "events", handler, grouped=True, urgent=True)
    clock = Clock()
    monkeypatch.setattr(embedded_transport, "monotonic", clock)
    consumer = app.consumer
    log = consumer.transport.log
    for tp in (EVENTS, OUTBOX):
        log.create_topic(tp.topic, 1)
        consumer._positions[tp] = 0
    return consumer, log, clock


def fetched(consumer) -> dict[str, list[bytes]]:
    records = consumer._fetch({EVENTS, OUTBOX})
    return {tp.topic: [record.value for record in batch] for tp, batch in records.items()}


def test_while_events_wait_the_other_topics_are_read_at_most_every_defer_at_most(
        tmp_path, monkeypatch):
    consumer, log, clock = make_consumer(tmp_path, monkeypatch)
    log.append(OUTBOX.topic, 0, b"m1", b"welcome")
    log.append(EVENTS.topic, 0, b"m1", b"purchase-1")
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-1"], OUTBOX.topic: [b"welcome"]}

    log.append(OUTBOX.topic, 0, b"m1", b"receipt")
    log.append(EVENTS.topic, 0, b"m1", b"purchase-2")
    clock.now += embedded_transport.DEFER_AT_MOST / 2
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-2"]}

    log.append(EVENTS.topic, 0, b"m1", b"purchase-3")
    clock.now += embedded_transport.DEFER_AT_MOST / 2 + 0.001
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-3"], OUTBOX.topic: [b"receipt"]}
    log.close()


def test_without_events_waiting_the_other_topics_are_read_at_once(tmp_path, monkeypatch):
    consumer, log, clock = make_consumer(tmp_path, monkeypatch)
    log.append(EVENTS.topic, 0, b"m1", b"purchase-1")
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-1"]}

    log.append(OUTBOX.topic, 0, b"m1", b"receipt")
    clock.now += 0.001
    assert fetched(consumer) == {OUTBOX.topic: [b"receipt"]}
    assert fetched(consumer) == {}
    log.close()
