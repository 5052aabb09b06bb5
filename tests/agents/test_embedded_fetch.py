"""The embedded consumer's fetch: the events topic's records at every fetch, the topics its
effects feed at most every ``OTHERS_EVERY`` seconds, in larger batches."""

from __future__ import annotations

import asyncio
import time

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


def make_consumer(tmp_path, monkeypatch=None):
    """A consumer of both topics at offset 0, on a clock the test moves (with
    ``monkeypatch``); the events topic is urgent, as the member agent registers it."""
    embedded_transport.register()
    app = faust.App("fetch-test", broker=f"embedded://{tmp_path / 'log'}",
                    datadir=str(tmp_path), topic_partitions=1)

    async def handler(batches):
        raise AssertionError("not delivered in these tests")

    batch_agent(app, app.topic(EVENTS.topic), "events", handler, grouped=True, urgent=True)
    clock = Clock()
    if monkeypatch is not None:
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


def test_the_other_topics_are_read_at_most_every_others_every(tmp_path, monkeypatch):
    consumer, log, clock = make_consumer(tmp_path, monkeypatch)
    log.append(OUTBOX.topic, 0, b"m1", b"welcome")
    log.append(EVENTS.topic, 0, b"m1", b"purchase-1")
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-1"], OUTBOX.topic: [b"welcome"]}

    log.append(OUTBOX.topic, 0, b"m1", b"receipt")
    log.append(EVENTS.topic, 0, b"m1", b"purchase-2")
    clock.now += embedded_transport.OTHERS_EVERY / 2
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-2"]}

    log.append(EVENTS.topic, 0, b"m1", b"purchase-3")
    clock.now += embedded_transport.OTHERS_EVERY / 2 + 0.001
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-3"], OUTBOX.topic: [b"receipt"]}
    log.close()


def test_between_events_the_other_topics_still_wait_their_turn(tmp_path, monkeypatch):
    """Read as soon as anything reached them, each request's events set off a cascade of small
    batches (outbox, status events, analytics, history), each with a batch's fixed costs."""
    consumer, log, clock = make_consumer(tmp_path, monkeypatch)
    log.append(EVENTS.topic, 0, b"m1", b"purchase-1")
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-1"]}

    log.append(OUTBOX.topic, 0, b"m1", b"receipt")
    log.append(OUTBOX.topic, 0, b"m1", b"webhook")
    clock.now += 0.001
    assert fetched(consumer) == {}
    clock.now += embedded_transport.OTHERS_EVERY
    assert fetched(consumer) == {OUTBOX.topic: [b"receipt", b"webhook"]}
    assert fetched(consumer) == {}
    log.close()


def test_a_fetch_without_urgent_topics_reads_every_topic_at_once(tmp_path, monkeypatch):
    """Recovery fetches the changelogs alone: nothing there may wait."""
    consumer, log, clock = make_consumer(tmp_path, monkeypatch)
    log.append(OUTBOX.topic, 0, b"m1", b"receipt")
    assert fetched(consumer) == {OUTBOX.topic: [b"receipt"]}
    log.append(OUTBOX.topic, 0, b"m1", b"webhook")
    records = consumer._fetch({OUTBOX})
    assert [record.value for record in records[OUTBOX]] == [b"webhook"]
    log.close()


def test_an_idle_fetch_wakes_up_when_the_other_topics_are_due(tmp_path):
    consumer, log, _ = make_consumer(tmp_path)
    log.append(EVENTS.topic, 0, b"m1", b"purchase-1")
    assert fetched(consumer) == {EVENTS.topic: [b"purchase-1"]}
    log.append(OUTBOX.topic, 0, b"m1", b"receipt")

    async def next_fetch() -> tuple[dict, float]:
        began = time.monotonic()
        records = await consumer._getmany({EVENTS, OUTBOX}, timeout=5.0)
        return records, time.monotonic() - began

    records, waited = asyncio.run(next_fetch())
    assert {tp.topic: [r.value for r in batch] for tp, batch in records.items()} == {
        OUTBOX.topic: [b"receipt"]}
    assert embedded_transport.OTHERS_EVERY * 0.5 < waited < 1.0
    log.close()
