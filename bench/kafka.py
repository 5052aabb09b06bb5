"""Kafka-side helpers of the stream benchmarks: topics with explicit configs, preloading,
the open-loop producer and reading an output topic back (all aiokafka, against tansu)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.topics import EVENT_RETENTION_SECONDS
from bench.measure import OpenLoopSchedule

DELETE_CONFIGS = {"cleanup.policy": "delete", "retention.ms": str(EVENT_RETENTION_SECONDS * 1000)}


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create topics with explicit configs (tansu answers empty configs otherwise, which
    quix-streams cannot read)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=DELETE_CONFIGS)
                                   for name in names])
    finally:
        await admin.close()


async def preload(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes]]) -> float:
    """Produce records (partition, key, value) in large batches and wait for all acks; returns
    seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1,
                                max_batch_size=256 * 1024, linger_ms=5)
    await producer.start()
    began = time.perf_counter()
    try:
        futures = []
        for partition, key, value in records:
            futures.append(await producer.send(topic, value, key=key, partition=partition))
            if len(futures) >= 20000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


async def read_all(bootstrap: str, topic: str, partitions: int,
                   idle: float = 1.5) -> list[tuple[bytes, bytes]]:
    """Every record of a topic from the start, until ``idle`` seconds bring nothing new."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    out = []
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle:
            batches = await consumer.getmany(timeout_ms=200, max_records=10000)
            for messages in batches.values():
                for message in messages:
                    out.append((message.key, message.value))
            if batches:
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return out


async def open_loop_kafka(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes]],
                          rate: float, tick: float = 0.005) -> dict:
    """Send ``records`` at ``rate`` per second on a fixed schedule (every ``tick`` seconds the
    records due by then), whatever the consumer does: an open loop. Batching producer
    (linger 1 ms); each record's timestamp is its create time at ``send``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=1,
                                max_batch_size=64 * 1024)
    await producer.start()
    futures = []
    sent = 0
    schedule = OpenLoopSchedule(rate, len(records), tick)
    try:
        async for due in schedule:
            while sent < due:
                partition, key, value = records[sent]
                futures.append(await producer.send(topic, value, key=key, partition=partition))
                sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return {"sent": sent, "send_s": round(schedule.seconds, 3),
            "achieved_rate": round(sent / schedule.seconds, 1),
            "max_behind_schedule_s": round(schedule.max_behind, 3)}
