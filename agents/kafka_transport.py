"""``kafka://``: faust's aiokafka transport with the batch path (agents/batching.py).

Five things change; connection handling, the consumer thread, group membership, the
rebalance listener and the producer's own ``send`` are faust's:

- the consumer's drain loop (and what a batch handler is given for a record);
- the producer can also take many records at once, as record batches
  (:meth:`Producer.send_records`);
- high-water marks for recovery come from fetch responses, not from ListOffsets;
- the group consumer's fetch wait is ``Settings.fetch_max_wait_ms``, not faust's fixed 1.5 s;
- partitions faust pauses are paused in aiokafka too (``Consumer.pause_partitions``).

Why the high-water marks: faust's recovery reads a changelog up to the high-water mark it asked
for, and refuses to start a worker whose tables persisted an offset above it
(ConsistencyError). A broker whose ListOffsets answer is short (tansu 0.6 answers the last
batch's base offset + 1 when a batch holds several records) then stops a restarted worker,
unless every record is produced in a batch of its own, which costs a broker round trip per
record. The high-water mark a fetch response carries is right on every broker, Apache Kafka
included.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, ClassVar, Iterable, List, Mapping, NamedTuple, Optional, Type

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from agents.batching import BatchDrainMixin, BatchRecord
from agents.embedded_transport import partition_for

SCHEME = "kafka"

#: How long to wait for every partition's fetch response before falling back to ListOffsets.
HIGH_WATER_TIMEOUT = 10.0


async def fetched_high_waters(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition],
                              timeout: float = HIGH_WATER_TIMEOUT) -> dict[TopicPartition, int]:
    """The high-water mark of each partition, as a fetch response reports it.

    ``consumer`` is started and outside any group; this assigns it ``partitions``. Each
    partition with records is fetched from one offset below ListOffsets' answer (never below
    the log start), so the fetch returns at once with at least its last batch; an empty
    partition needs no fetch. A partition that gives no answer within ``timeout`` keeps
    ListOffsets' answer.
    """
    tps = list(partitions)
    if not tps:
        return {}
    listed = await consumer.end_offsets(tps)
    earliest = await consumer.beginning_offsets(tps)
    marks = {tp: listed[tp] for tp in tps if listed[tp] <= earliest[tp]}
    wanted = [tp for tp in tps if tp not in marks]
    if wanted:
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, max(earliest[tp], listed[tp] - 1))
        deadline = asyncio.get_running_loop().time() + timeout
        while wanted and asyncio.get_running_loop().time() < deadline:
            await consumer.getmany(*wanted, timeout_ms=100, max_records=1)
            for tp in wanted:
                mark = consumer.highwater(tp)
                if mark is not None:
                    marks[tp] = mark
            wanted = [tp for tp in wanted if tp not in marks]
        for tp in wanted:
            marks[tp] = listed[tp]
    return marks


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """faust's consumer thread, asking fetch responses for high-water marks, with the
    worker's fetch wait (``Settings.fetch_max_wait_ms``) instead of faust's fixed 1.5 s."""

    def _create_worker_consumer(self, transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start() when it builds its fetcher; faust passes no setting.
        consumer._fetch_max_wait_ms = fetch_max_wait_ms(self.app)
        return consumer

    async def _highwaters(self, partitions: List[TP]) -> Mapping[TP, int]:
        if self.consumer.in_transaction:
            return await super()._highwaters(partitions)
        probe = AIOKafkaConsumer(**_probe_settings(self))
        await probe.start()
        try:
            marks = await fetched_high_waters(
                probe, [TopicPartition(tp.topic, tp.partition) for tp in partitions])
        finally:
            await probe.stop()
        return {TP(tp.topic, tp.partition): mark for tp, mark in marks.items()}


def fetch_max_wait_ms(app) -> int:
    """The worker's fetch wait (faust's own default for an app built without our settings)."""
    settings = getattr(app, "tillstream_settings", None)
    return 1500 if settings is None else settings.fetch_max_wait_ms


def _probe_settings(thread: faust_aiokafka.AIOKafkaConsumerThread) -> dict[str, Any]:
    """The group consumer's connection settings, built as faust builds them."""
    conf = thread.app.conf
    return dict(bootstrap_servers=faust_aiokafka.server_list(thread.transport.url,
                                                             thread.transport.default_port),
                client_id=conf.broker_client_id, enable_auto_commit=False,
                fetch_max_wait_ms=100, max_partition_fetch_bytes=64 * 1024,
                **faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials,
                                                              conf.ssl_context))


class Consumer(BatchDrainMixin, faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetched records go to batch handlers where registered."""

    def pause_partitions(self, tps: Iterable[TP]) -> None:
        super().pause_partitions(tps)
        self._mirror_paused()

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        super().resume_partitions(tps)
        self._mirror_paused()

    def _mirror_paused(self) -> None:
        """faust pauses a partition only in its own bookkeeping: it stops asking for its
        records, and aiokafka goes on fetching them. After recovery that is every changelog
        partition of the worker's tables, so the worker fetched back its own changelog
        writes, which nobody took; and aiokafka holds all fetching from a broker while
        records it fetched wait (up to 100 ms), so events waited behind them (p99 0.2-0.4 s
        at 300 events/s on tansu). The paused set is applied on the consumer's own thread."""
        thread = self._thread
        client = getattr(thread, "_consumer", None)
        if client is None:
            return
        paused = frozenset(self._paused_partitions)
        try:
            thread.thread_loop.call_soon_threadsafe(_apply_paused, client, paused)
        except RuntimeError:  # the consumer thread's loop has closed: nothing left to fetch
            pass

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @staticmethod
    def _to_batch_record(record) -> BatchRecord:
        timestamp = record.timestamp  # aiokafka: milliseconds, as in faust's _to_message
        return BatchRecord(record.topic, record.partition, record.offset,
                           None if timestamp is None else timestamp / 1000.0,
                           record.key, record.value)


def _apply_paused(client: AIOKafkaConsumer, paused: frozenset[TP]) -> None:
    for tp in client.assignment():
        if TP(tp.topic, tp.partition) in paused:
            client.pause(tp)
        else:
            client.resume(tp)


class SentBatch(NamedTuple):
    """A record batch handed to the producer: ``future`` resolves to the metadata of its
    first record (of ``count``) once the broker has them."""

    future: asyncio.Future
    topic: str
    partition: int
    count: int


class Producer(faust_aiokafka.Producer):
    """faust's aiokafka producer, which can also send many records at once as record batches.

    ``send`` costs a coroutine, a partitioner call, a future and an accumulator lookup per
    record, and a Kafka-mode worker sends about six records an event (effects and changelog
    records), all awaited together at the end of a fetch: batches instead took 12-19 % off
    the worker's CPU (bench/RESULTS.md, 2026-12-02 fourth session). ``send_records`` fills one
    aiokafka ``BatchBuilder`` per topic partition (another when one is full) and hands each to
    the producer whole, with one future."""

    async def send_records(self, records: list[tuple[str, Optional[bytes], Optional[bytes],
                                                     Optional[int]]]) -> list[SentBatch]:
        """Send ``(topic, key, value, partition)`` records (partition None: the key's, as
        ``send`` would choose it), in order within each partition."""
        producer = self._ensure_producer()
        per_partition: dict[tuple[str, int], list[tuple[Optional[bytes], Optional[bytes]]]] = {}
        partition_counts: dict[str, int] = {}
        for topic, key, value, partition in records:
            if partition is None:
                count = partition_counts.get(topic)
                if count is None:
                    await producer.client._wait_on_metadata(topic)
                    count = partition_counts[topic] = len(
                        producer.client.cluster.partitions_for_topic(topic))
                partition = (partition_for(key, count) if key is not None
                             else producer._partition(topic, None, key, value, key, value))
            items = per_partition.get((topic, partition))
            if items is None:
                items = per_partition[(topic, partition)] = []
            items.append((key, value))
        filled: list[list[tuple[str, int, Any]]] = []
        for (topic, partition), items in per_partition.items():
            batch = producer.create_batch()
            batches = [(topic, partition, batch)]
            for key, value in items:
                if batch.append(timestamp=None, key=key, value=value) is None:
                    batch = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value)  # a lone record fits
                    batches.append((topic, partition, batch))
            filled.append(batches)
        # Every partition's first batch, then every second one...: the producer queues one
        # batch per partition at a time and sends one per partition per request, so the first
        # request carries a batch of every partition.
        sent = []
        for round_ in itertools.zip_longest(*filled):
            for topic, partition, batch in filter(None, round_):
                sent.append(await self._send_batch(producer, batch, topic, partition))
        return sent

    @staticmethod
    async def _send_batch(producer, batch, topic: str, partition: int) -> SentBatch:
        count = batch.record_count()
        try:
            future = await producer.send_batch(batch, topic, partition=partition)
        except KafkaError as exc:
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc
        return SentBatch(future, topic, partition, count)


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Type[Consumer]] = Consumer
    Producer: ClassVar[Type[Producer]] = Producer


def register() -> None:
    """Make ``kafka://`` URLs resolve to this transport (idempotent)."""
    from faust.transport.drivers import TRANSPORTS

    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
