"""The embedded producer writes every send of one loop turn in one atomic write."""

from __future__ import annotations

import asyncio

import faust
import pytest

from agents import embedded_transport
from tables.embedded_log import EmbeddedLog


def make_producer(tmp_path):
    embedded_transport.register()
    app = faust.App("producer-test", broker=f"embedded://{tmp_path / 'log'}",
                    datadir=str(tmp_path), topic_partitions=2)
    return app.producer, app


def test_appends_of_one_turn_share_one_future_and_land_in_order(tmp_path):
    producer, app = make_producer(tmp_path)

    async def scenario():
        first = producer.append_this_turn("effects", b"m1", b"a")
        second = producer.append_this_turn("effects", b"m1", b"b")
        metadata = producer.send_this_turn("effects", b"m1", b"c")
        assert first is second and not first.done()
        await first
        return (await metadata).offset

    assert asyncio.run(scenario()) == 2
    producer.transport.log.close()
    log = EmbeddedLog.open(tmp_path / "log")
    partition = embedded_transport.partition_for(b"m1", 2)
    assert [r.value for r in log.read("effects", partition, 0, 10)] == [b"a", b"b", b"c"]
    log.close()


def test_a_failed_write_fails_the_turn_and_every_send(tmp_path, monkeypatch):
    producer, app = make_producer(tmp_path)

    def disk_full(groups):
        raise OSError("No space left on device")

    async def scenario():
        turn = producer.append_this_turn("effects", b"m1", b"a")
        metadata = producer.send_this_turn("effects", b"m1", b"b")
        monkeypatch.setattr(producer.transport.log, "append_groups", disk_full)
        with pytest.raises(OSError, match="No space"):
            await turn
        with pytest.raises(OSError, match="No space"):
            await metadata

    asyncio.run(scenario())


def test_a_record_the_api_checked_is_read_back_as_checked_from_the_tail_and_from_disk(tmp_path):
    producer, app = make_producer(tmp_path)

    async def scenario():
        await producer.append_this_turn("events", b"m1", b"validated", checked=True)
        await producer.append_this_turn("events", b"m1", b"produced-by-anything")

    asyncio.run(scenario())
    partition = embedded_transport.partition_for(b"m1", 2)
    to_batch_record = embedded_transport.Consumer._to_batch_record
    from_tail = producer.transport.log.read("events", partition, 0, 10)
    assert [(r.value, to_batch_record(r).checked) for r in from_tail] == [
        (b"validated", True), (b"produced-by-anything", False)]
    producer.transport.log.close()
    log = EmbeddedLog.open(tmp_path / "log")
    assert [to_batch_record(r).checked for r in log.read("events", partition, 0, 10)] == [
        True, False]
    log.close()
