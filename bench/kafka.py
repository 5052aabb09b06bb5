"""Kafka-side helpers of the stream benchmarks: topics with explicit configs, preloading,
the open-loop producer and reading an output topic back (all aiokafka, against tansu)."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.topics import EVENT_RETENTION_SECONDS
from bench.measure import OpenLoopSchedule, exact_percentiles

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


#: Marks the open loop's records, which :class:`DeliveryWatch` times.
OPEN_LOOP_HEADER = "bench-open-loop"


class DeliveryWatch:
    """A plain aiokafka consumer reading ``topic`` while an open loop writes to it: the broker's
    own produce-to-consume time (a record's create time to the fetch that returns it), with the
    worker's fetch wait, measured at the same moment as the engine. On tansu 0.6 in memory this
    time grows with the records the broker holds (``python -m bench.tansu_floor``), so an
    engine's latency on tansu reads only next to it.

    Only the open loop's records count (by their header), not those the engine writes to the
    same topic itself."""

    def __init__(self, bootstrap: str, topic: str, fetch_max_wait_ms: int = 10) -> None:
        self.bootstrap, self.topic, self.fetch_max_wait_ms = bootstrap, topic, fetch_max_wait_ms
        #: (seconds since the start, produce-to-consume ms) per record
        self.ages: list[tuple[float, float]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._started = 0.0

    async def start(self) -> None:
        self._started = time.time()
        consumer = self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_max_wait_ms)
        await consumer.start()
        await consumer.topics()  # loads the topic's partitions into the metadata
        partitions = [TopicPartition(self.topic, p)
                      for p in sorted(consumer.partitions_for_topic(self.topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolved now, before the first record is sent
            await consumer.position(partition)
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        started = self._started
        while True:
            fetched = await self._consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in fetched.values():
                for record in records:
                    if record.headers and record.headers[0][0] == OPEN_LOOP_HEADER:
                        self.ages.append((now - started, now * 1000 - record.timestamp))

    async def stop(self, expected: int, grace: float = 10.0) -> dict:
        """Wait (up to ``grace`` seconds) until ``expected`` records were seen, stop, and
        return the percentiles."""
        deadline = time.monotonic() + grace
        while len(self.ages) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()
        return {"records": len(self.ages), **exact_percentiles([age for _, age in self.ages])}


async def open_loop_kafka(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes]],
                          rate: float, tick: float = 0.005,
                          delivery: DeliveryWatch | None = None) -> dict:
    """Send ``records`` at ``rate`` per second on a fixed schedule (every ``tick`` seconds the
    records due by then), whatever the consumer does: an open loop. Batching producer
    (linger 1 ms); each record's timestamp is its create time at ``send``, and it carries the
    header :data:`OPEN_LOOP_HEADER`. With ``delivery``, a :class:`DeliveryWatch` reads the
    topic meanwhile and its percentiles come back as ``broker`` (it adds a consumer's fetches
    to the broker's load, so it is left out unless asked for)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=1,
                                max_batch_size=64 * 1024)
    await producer.start()
    if delivery:
        await delivery.start()
    futures = []
    sent = 0
    schedule = OpenLoopSchedule(rate, len(records), tick)
    try:
        async for due in schedule:
            while sent < due:
                partition, key, value = records[sent]
                futures.append(await producer.send(topic, value, key=key, partition=partition,
                                                   headers=[(OPEN_LOOP_HEADER, b"")]))
                sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    result = {"sent": sent, "send_s": round(schedule.seconds, 3),
              "achieved_rate": round(sent / schedule.seconds, 1),
              "max_behind_schedule_s": round(schedule.max_behind, 3)}
    if delivery:
        result["broker"] = await delivery.stop(sent)
    return result
