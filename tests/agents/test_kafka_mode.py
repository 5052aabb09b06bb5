"""Kafka mode on a real Kafka-protocol broker (tansu): the quirks we work around, and two
workers sharing the partitions of one topic with table queries routed to the owner."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from faust.types import TP

from agents.app import create_app
from agents.kafka_transport import Consumer, fetched_high_waters
from agents.settings import Settings
from tests.support import wait_until

#: These tests prove the plumbing with the minimal counter agent (agents/counter.py).
MINIMAL = {"TILLSTREAM_PIPELINE": "minimal"}

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _produce_one_batch(bootstrap: str, topic: str, records: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=16384, linger_ms=50)
    await producer.start()
    try:
        futures = [await producer.send(topic, b"value", key=b"k", partition=0)
                   for _ in range(records)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _end_offsets(bootstrap: str, topic: str) -> tuple[int, int]:
    """(ListOffsets' answer, the fetch responses' answer) for partition 0 of ``topic``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        listed = (await consumer.end_offsets([tp]))[tp]
        return listed, (await fetched_high_waters(consumer, [tp]))[tp]
    finally:
        await consumer.stop()


async def _create_and_describe(bootstrap: str, topic: str, configs: dict,
                               partitions: int = 1) -> dict:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
        return _entries(await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]))
    finally:
        await admin.close()


def _entries(described) -> dict:
    result = {}
    for response in described:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                result[entry["config_names"]] = entry["config_value"]
    return result


def test_quirk_list_offsets_counts_a_multi_record_batch_as_one(tansu):
    """tansu 0.6.0: 10 records in one batch -> ListOffsets says 1; the fetch response says 10,
    and that is what the worker's recovery uses (agents/kafka_transport.py)."""
    asyncio.run(_create_and_describe(tansu.bootstrap, "quirk-batch", {}))
    asyncio.run(_produce_one_batch(tansu.bootstrap, "quirk-batch", 10))
    assert asyncio.run(_end_offsets(tansu.bootstrap, "quirk-batch")) == (1, 10)


def test_fetched_high_water_of_an_empty_topic_is_zero(tansu):
    asyncio.run(_create_and_describe(tansu.bootstrap, "quirk-empty", {}))
    assert asyncio.run(_end_offsets(tansu.bootstrap, "quirk-empty")) == (0, 0)


def test_quirk_topics_created_without_configs_describe_empty(tansu):
    """tansu 0.6.0 answers empty configs for a topic created without them; with explicit
    configs (as agents/topics.py declares every topic) they are there."""
    assert asyncio.run(_create_and_describe(tansu.bootstrap, "quirk-noconf", {})) == {}
    described = asyncio.run(_create_and_describe(
        tansu.bootstrap, "quirk-conf", {"cleanup.policy": "delete", "retention.ms": "1000"}))
    assert described.get("retention.ms") == "1000"


async def _records_while_faust_pauses(bootstrap: str, topic: str, paused: set) -> dict:
    """Partition -> values fetched by an aiokafka consumer of both partitions of ``topic``
    while faust's paused set is ``paused`` (mirrored as the worker's consumer does)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10,
                              auto_offset_reset="earliest")
    await producer.start()
    await client.start()
    try:
        for partition in (0, 1):
            await producer.send_and_wait(topic, b"p%d" % partition, partition=partition)
        client.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        faust_consumer = SimpleNamespace(
            _thread=SimpleNamespace(_consumer=client, thread_loop=asyncio.get_running_loop()),
            _paused_partitions=paused)
        Consumer._mirror_paused(faust_consumer)
        await asyncio.sleep(0)  # the consumer thread's loop is this loop here
        fetched: dict[int, list[bytes]] = {}
        for _ in range(5):
            for tp, records in (await client.getmany(timeout_ms=200)).items():
                fetched.setdefault(tp.partition, []).extend(r.value for r in records)
        return fetched
    finally:
        await client.stop()
        await producer.stop()


def test_a_partition_faust_pauses_is_not_fetched(tansu):
    """faust pauses a table's changelog partitions after recovery only in its own bookkeeping;
    the worker's consumer pauses them in aiokafka too, so it stops fetching its own writes."""
    asyncio.run(_create_and_describe(tansu.bootstrap, "paused-2p", {
        "cleanup.policy": "delete", "retention.ms": "3600000"}, partitions=2))
    assert asyncio.run(_records_while_faust_pauses(
        tansu.bootstrap, "paused-2p", {TP("paused-2p", 0)})) == {1: [b"p1"]}
    assert asyncio.run(_records_while_faust_pauses(
        tansu.bootstrap, "paused-2p", set())) == {0: [b"p0", b"p0"], 1: [b"p1", b"p1"]}


def test_two_workers_share_partitions_and_route_queries_to_the_owner(worker_factory):
    first = worker_factory("kafka", name="w1", env=MINIMAL).start()
    second = worker_factory("kafka", name="w2", env=MINIMAL).start()

    def split_assignment():
        owned = []
        for worker in (first, second):
            status, body = worker.get("/readyz")
            if status != 200:
                return False
            topic = next((t for t in body["assigned"] if t.endswith("-events")), None)
            owned.append(set(body["assigned"].get(topic, [])))
        return owned if all(owned) and not (owned[0] & owned[1]) and \
            owned[0] | owned[1] == {0, 1, 2, 3} else False

    owned = wait_until(split_assignment, 90, interval=1, message="partitions split")
    assert len(owned[0]) + len(owned[1]) == 4

    events = [{"id": f"e-{i}", "member": f"M-{i % 40}", "data": {"amount": 2.0}}
              for i in range(400)]
    assert first.post("/v1/counters", {"events": events[:200]})[0] == 202
    assert second.post("/v1/counters", {"events": events[200:]})[0] == 202
    expected = Counter(e["member"] for e in events)

    def all_answered_by_both():
        for member, count in expected.items():
            for worker in (first, second):
                status, body = worker.get(f"/v1/counters/{member}")
                if status != 200 or body["count"] != count:
                    return False
        return True

    wait_until(all_answered_by_both, 90, interval=1, message="both workers answer every member")
    for worker in (first, second):
        status, body = worker.get("/v1/counters/M-7")
        assert (status, body["amount"]) == (200, 20.0)


async def _send_records_and_read_back(bootstrap: str, topic: str, records: list,
                                      data_dir) -> tuple:
    """Send ``records`` through the worker's producer (batches of at most 600 bytes, so a
    partition's records span several); returns the batches and what each partition holds."""
    await _create_and_describe(bootstrap, topic, {}, partitions=4)
    app = create_app(Settings(broker=f"kafka://{bootstrap}", pipeline="minimal",
                              data_dir=data_dir,
                              faust_options={"producer_max_batch_size": 600}))
    await app.producer.start()
    try:
        batches = await app.producer.send_records(records)
        await asyncio.gather(*(batch.future for batch in batches))
        aiokafka_partition = app.producer._ensure_producer()._partition
        chosen = {key: aiokafka_partition(topic, None, key, b"", key, b"")
                  for _, key, _, _ in records}
    finally:
        await app.producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        held: dict[int, list] = {p: [] for p in range(4)}
        while sum(map(len, held.values())) < len(records):
            for tp, got in (await consumer.getmany(*tps, timeout_ms=500)).items():
                held[tp.partition] += [(r.offset, r.key, r.value) for r in got]
    finally:
        await consumer.stop()
    return batches, held, chosen


def test_records_sent_as_batches_land_where_send_would_put_them_in_order(tansu, tmp_path):
    records = [("sent-in-batches", b"member-%d" % (n % 7), b"value-%03d" % n, None)
               for n in range(60)]
    records += [("sent-in-batches", b"member-0", b"pinned-%d" % n, 3) for n in range(5)]
    batches, held, chosen = asyncio.run(
        _send_records_and_read_back(tansu.bootstrap, "sent-in-batches", records, tmp_path))

    expected = {p: [] for p in range(4)}
    for _, key, value, partition in records:
        expected[chosen[key] if partition is None else partition].append((key, value))
    assert {p: [(k, v) for _, k, v in got] for p, got in held.items()} == expected
    for partition, got in held.items():
        mine = [batch for batch in batches if batch.partition == partition]
        assert sum(batch.count for batch in mine) == len(got)
        covered = [batch.future.result().offset + n for batch in mine
                   for n in range(batch.count)]
        assert covered == [offset for offset, _, _ in got]
    assert len(batches) > 4  # at 600 bytes a batch, a partition's records took several
