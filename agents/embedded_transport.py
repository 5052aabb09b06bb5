"""faust transport for the embedded log: ``embedded://`` (or ``embedded:///path/to/log``).

The worker process owns every partition of every topic: there is no consumer group and no
rebalance between processes. ``subscribe`` therefore drives, by itself, the protocol that
aiokafka's rebalance listener drives in Kafka mode (revoke nothing, bump the generation, assign
all partitions), and fills the partition assignor's view of the assignment so that
``@app.table_route`` finds this worker as the owner of every key.

Partitioning uses the same murmur2 hash as Kafka clients, so a member lands on the same
partition number in both modes.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any, Awaitable, Callable, ClassVar, Iterator, Mapping, Optional, Set, Type

from aiokafka.partitioner import murmur2
from faust.assignor.client_assignment import ClientAssignment
from faust.transport import base
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.producer import Producer as FaustProducer
from faust.types import TP
from faust.types.tuples import ConsumerMessage, RecordMetadata
from mode import Seconds, Service

from agents.batching import BatchDrainMixin, BatchRecord, urgent_of
from tables.compaction_scan import scan_elsewhere
from tables.embedded_log import DEFAULT_RETENTION_MS, EmbeddedLog, LogRecord

SCHEME = "embedded"
MAX_RECORDS_PER_PARTITION = 2000
#: Seconds between compaction / retention passes over the log.
MAINTENANCE_INTERVAL = 30.0
#: The most of the event loop's time a maintenance pass takes (``run_paced``).
MAINTENANCE_SHARE = 0.1
#: Seconds between two reads of the topics that are not urgent, while the worker consumes
#: urgent ones (``Consumer._fetch``).
OTHERS_EVERY = 0.05
#: The header of a record the HTTP API validated before appending it: the member agent does
#: not validate it again (``BatchRecord.checked``).
CHECKED_HEADER = "tillstream-checked"
_CHECKED_HEADERS = ((CHECKED_HEADER, b""),)


@lru_cache(maxsize=1 << 16)
def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive, modulo); cached, since murmur2 is pure
    Python and the same member ids come back again and again."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _timestamp_ms(timestamp: Optional[float]) -> Optional[int]:
    return None if timestamp is None else int(timestamp * 1000)


def _header_list(headers: Any) -> list:
    if not headers:  # the usual case, before a costly isinstance against typing.Mapping
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


class _TopicCreation:
    """Shared topic declaration for the consumer and producer sides."""

    transport: "Transport"

    async def create_topic(self, topic: str, partitions: int, replication: int, *,
                           config: Optional[Mapping[str, Any]] = None,
                           timeout: Seconds = 30.0, retention: Optional[Seconds] = None,
                           compacting: Optional[bool] = None, deleting: Optional[bool] = None,
                           ensure_created: bool = False) -> None:
        self.transport.declare_topic(topic, partitions, config=config, retention=retention,
                                     compacting=compacting)


class Consumer(_TopicCreation, BatchDrainMixin, FaustConsumer):
    """Reads the embedded log; positions live here, committed offsets in the log."""

    transport: "Transport"

    def __post_init__(self) -> None:
        self._log = self.transport.log
        self._group = self.app.conf.id
        self._assigned: Set[TP] = set()
        self._positions: dict[TP, int] = {}
        self._rebalancing: Optional[asyncio.Future] = None
        self._new_data = asyncio.Event()
        self._log.add_listener(self._new_data.set)
        self._others_read_at = 0.0

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._rebalancing is not None and not self._rebalancing.done():
            self._rebalancing.cancel()
        self._log.remove_listener(self._new_data.set)
        self._log.flush()

    @Service.task
    async def _maintain_log(self) -> None:
        """Keep the disk bounded: compact grown changelogs, drop records past retention."""
        async for _ in self.itertimer(MAINTENANCE_INTERVAL, name="embedded-log-maintenance"):
            for topic in self._log.compaction_due():
                await self._compact(topic)
            await run_paced(self._log.retention_steps(), MAINTENANCE_SHARE)

    async def _compact(self, topic: str) -> None:
        """Compact ``topic``: a process of its own finds the stale records
        (tables/compaction_scan.py) and the worker deletes them, paced; if that process
        fails, the worker scans too, as it did before."""
        ends, appended = self._log.compaction_snapshot(topic)
        stale = await scan_elsewhere(self._log.path, topic, ends)
        steps = (self._log.compaction_steps(topic) if stale is None
                 else self._log.delete_stale_steps(topic, stale, appended))
        await run_paced(steps, MAINTENANCE_SHARE)

    # -- assignment --------------------------------------------------------------------------

    async def subscribe(self, topics) -> None:
        """Own every partition of every subscribed topic (single-process mode).

        Like aiokafka, this returns at once and rebalances in the background: faust's
        partition-assigned handler waits for the subscription call to have returned.
        """
        previous = self._rebalancing
        self._rebalancing = asyncio.ensure_future(self._rebalance(set(topics), previous))

    async def _rebalance(self, topics: set[str], previous: Optional[asyncio.Future]) -> None:
        if previous is not None and not previous.done():
            await previous
        default_partitions = self.app.conf.topic_partitions
        assigned: Set[TP] = set()
        for topic in sorted(topics):
            meta = self._log.topic(topic) or self.transport.declare_topic(topic, default_partitions)
            assigned.update(TP(topic, p) for p in range(meta.partitions))
        revoked = self._assigned - assigned
        self._publish_assignment(assigned)
        app = self.app
        app.on_rebalance_start()
        await self.on_partitions_revoked(revoked)
        generation = app.consumer_generation_id + 1
        app.consumer_generation_id = generation
        self._assigned = assigned
        for tp in revoked:
            self._positions.pop(tp, None)
        await self.on_partitions_assigned(set(assigned), generation)

    def _publish_assignment(self, assigned: Set[TP]) -> None:
        actives: dict[str, list[int]] = {}
        for tp in assigned:
            actives.setdefault(tp.topic, []).append(tp.partition)
        assignor = self.app.assignor
        assignor._assignment = ClientAssignment(actives=actives, standbys={})
        assignor._active_tps = assignor._assignment.active_tps
        assignor._standby_tps = set()
        assignor._topic_groups = {topic: 0 for topic in actives}
        url = str(self.app.conf.canonical_url)
        assignor.changelog_distribution = {url: actives}
        assignor.external_topic_distribution = {url: actives}

    def assignment(self) -> Set[TP]:
        return set(self._assigned)

    def topic_partitions(self, topic: str) -> Optional[int]:
        meta = self._log.topic(topic)
        return None if meta is None else meta.partitions

    def key_partition(self, topic: str, key: Optional[bytes],
                      partition: Optional[int] = None) -> Optional[int]:
        return self.transport.key_partition(topic, key, partition)

    def _new_topicpartition(self, topic: str, partition: int) -> TP:
        return TP(topic, partition)

    # -- offsets -----------------------------------------------------------------------------

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: dict[TP, int] = {}
        for tp in self._assigned:
            offset = self._log.committed(self._group, tp.topic, tp.partition)
            if offset is None:
                self._positions[tp] = self._reset_offset(tp)
            else:
                self._positions[tp] = offset
                committed[tp] = offset
        return committed

    def _reset_offset(self, tp: TP) -> int:
        if self.app.conf.consumer_auto_offset_reset == "latest":
            return self._log.end_offset(tp.topic, tp.partition)
        return self._log.start_offset(tp.topic, tp.partition)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        owned = {(tp.topic, tp.partition): offset for tp, offset in offsets.items()
                 if tp in self._assigned}
        if owned:
            self._log.commit(self._group, owned)
        return True

    async def position(self, tp: TP) -> Optional[int]:
        if tp not in self._positions:
            committed = self._log.committed(self._group, tp.topic, tp.partition)
            self._positions[tp] = self._reset_offset(tp) if committed is None else committed
        return self._positions[tp]

    async def _seek(self, partition: TP, offset: int) -> None:
        self._positions[partition] = offset

    async def seek_to_beginning(self, *partitions: TP) -> None:
        for tp in partitions:
            self._positions[tp] = self._log.start_offset(tp.topic, tp.partition)

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        for tp, offset in partitions.items():
            self._positions[tp] = offset
            if offset > 0:
                self._read_offset[tp] = offset
            else:
                self._read_offset.pop(tp, None)

    def highwater(self, tp: TP) -> int:
        return self._log.end_offset(tp.topic, tp.partition)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        return {tp: self._log.end_offset(tp.topic, tp.partition) for tp in partitions}

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return {tp: self._log.start_offset(tp.topic, tp.partition) for tp in partitions}

    # -- fetching ----------------------------------------------------------------------------

    async def _getmany(self, active_partitions: Optional[Set[TP]],
                       timeout: float) -> Mapping[TP, list[LogRecord]]:
        partitions = self._assigned if active_partitions is None else active_partitions
        records = self._fetch(partitions)
        if not records:
            self._new_data.clear()
            try:
                await asyncio.wait_for(self._new_data.wait(),
                                       min(timeout, self._others_due_in(partitions)))
            except asyncio.TimeoutError:
                pass
            records = self._fetch(partitions)
        return records

    def _others_due_in(self, partitions: Set[TP]) -> float:
        """Seconds until the topics that are not urgent are read again (0: at the next fetch)."""
        if not self._defers_others(partitions):
            return 0.0
        return max(0.0, OTHERS_EVERY - (monotonic() - self._others_read_at))

    def _defers_others(self, partitions: Set[TP]) -> bool:
        urgent = urgent_of(self.app)
        return bool(urgent) and any(tp.topic in urgent for tp in partitions)

    def _fetch(self, partitions: Set[TP]) -> dict[TP, list[LogRecord]]:
        """The records after each partition's position: the urgent topics' at every fetch,
        the others' at most every ``OTHERS_EVERY`` seconds, in larger batches.

        Measured (open loop, 2026-12-02): the topics fed by the member agent's effects —
        outbox, scenario executions, analytics, side agents — took about a tenth of the
        worker, and each fetch handled them before or after the events that arrived meanwhile,
        which waited; so under load they were read at most every 50 ms. Between two HTTP
        requests, though, they were read as soon as anything reached them, and each request's
        events set off a cascade of small batches — the outbox's, then the status events it
        sends back, the analytics', the history's, the pools' replies — about five member
        flushes and seven log writes per request at 1,000 events/s, each with its fixed costs.
        No effect waits on them. (While the urgent topics are not fetched — recovery reads
        changelogs only — every topic is read at once.)"""
        if not self._defers_others(partitions):
            return self._read(partitions)
        now = monotonic()
        if now - self._others_read_at < OTHERS_EVERY:
            return self._read([tp for tp in partitions if tp.topic in urgent_of(self.app)])
        self._others_read_at = now
        return self._read(partitions)

    def _read(self, partitions) -> dict[TP, list[LogRecord]]:
        records: dict[TP, list[LogRecord]] = {}
        read = self._log.read
        for tp in partitions:
            position = self._positions.get(tp)
            if position is None:
                continue
            batch = read(tp.topic, tp.partition, position, MAX_RECORDS_PER_PARTITION)
            if batch:
                records[tp] = batch
                self._positions[tp] = batch[-1].offset + 1
        return records

    @staticmethod
    def _to_batch_record(record: LogRecord) -> BatchRecord:
        headers = record.headers
        return BatchRecord(record.topic, record.partition, record.offset,
                           record.timestamp_ms / 1000.0, record.key, record.value,
                           bool(headers) and headers[0][0] == CHECKED_HEADER)

    def _to_message(self, tp: TP, record: LogRecord) -> ConsumerMessage:
        key, value = record.key, record.value
        return ConsumerMessage(
            record.topic, record.partition, record.offset, record.timestamp_ms / 1000.0, 0,
            record.headers, key, value, None,
            0 if key is None else len(key), 0 if value is None else len(value), tp,
            generation_id=self.app.consumer_generation_id)


async def run_paced(steps: Iterator[Any], share: float, clock: Callable[[], float] = perf_counter,
                    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Run ``steps`` taking at most ``share`` of the event loop's time: after each step, sleep
    for the time it took times ``1 / share - 1``. Without it a compaction pass ran a step at
    every turn of the loop, took a third of a busy worker's time for seconds, and the events
    queued behind it (p99 from about 20 ms to 200-450 ms while a pass ran, at 1,800 events/s).
    """
    idle_per_busy = 1 / share - 1
    started = clock()
    for _ in steps:
        await sleep((clock() - started) * idle_per_busy)
        started = clock()


class Producer(_TopicCreation, FaustProducer):
    """Appends to the embedded log; a send is durable when its future resolves.

    Sends made in one turn of the event loop are written together, in one RocksDB write batch,
    at the end of that turn (``call_soon``): a batch handler's hundreds of effects cost one
    write, and their futures resolve once it is done. Order per partition is the order of the
    sends."""

    transport: "Transport"
    #: Every send of one loop turn lands in one atomic write: a batch handler can send its
    #: effects and its states' changelog records in the same turn, all or none durable.
    writes_turn_atomically = True

    def __post_init__(self) -> None:
        super().__post_init__()
        #: (partition, record, its own future or None) of every send of this turn
        self._pending: list[tuple[tuple[str, int], tuple, Optional[asyncio.Future]]] = []
        #: resolves when this turn's write is done (None: no write scheduled)
        self._turn: Optional[asyncio.Future] = None

    async def send(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                   partition: Optional[int], timestamp: Optional[float], headers: Any, *,
                   transactional_id: Optional[str] = None) -> asyncio.Future:
        return self.send_this_turn(topic, key, value, partition, timestamp, headers)

    def send_this_turn(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                       partition: Optional[int] = None, timestamp: Optional[float] = None,
                       headers: Any = None) -> asyncio.Future:
        """``send`` without a coroutine: the record joins this loop turn's write and the future
        resolves with its metadata."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((self._tp(topic, key, partition),
                              (key, value, _timestamp_ms(timestamp), _header_list(headers)),
                              future))
        self._schedule_write()
        return future

    def append_this_turn(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                         partition: Optional[int] = None, checked: bool = False
                         ) -> asyncio.Future:
        """The record joins this loop turn's write; returns the turn's future, shared by every
        record of the turn, which resolves (to None) once they are all written. For records
        whose offsets nobody reads (``agents.outgoing.Outgoing``, all but the last changelog
        record of a flush): a future and a ``RecordMetadata`` per record cost more than the
        rest of the send. ``checked``: the HTTP API validated it (``CHECKED_HEADER``)."""
        self._pending.append((self._tp(topic, key, partition),
                              (key, value, None, _CHECKED_HEADERS if checked else ()), None))
        return self._schedule_write()

    def _schedule_write(self) -> asyncio.Future:
        turn = self._turn
        if turn is None:
            loop = asyncio.get_running_loop()
            turn = self._turn = loop.create_future()
            loop.call_soon(self.write_pending)
        return turn

    async def send_and_wait(self, topic: str, key: Optional[bytes], value: Optional[bytes],
                            partition: Optional[int], timestamp: Optional[float], headers: Any,
                            *, transactional_id: Optional[str] = None) -> RecordMetadata:
        return await (await self.send(topic, key, value, partition, timestamp, headers))

    def _tp(self, topic: str, key: Optional[bytes], partition: Optional[int]) -> tuple[str, int]:
        if self.transport.log.topic(topic) is None:
            self.transport.declare_topic(topic, self.app.conf.topic_partitions)
        return topic, self.transport.key_partition(topic, key, partition)

    def write_pending(self) -> None:
        """Append every pending send to the log and resolve the futures."""
        turn, self._turn = self._turn, None
        pending, self._pending = self._pending, []
        if not pending:
            if turn is not None and not turn.done():
                turn.set_result(None)
            return
        groups: dict[tuple[str, int], list[tuple]] = {}
        for tp, record, _ in pending:
            groups.setdefault(tp, []).append(record)
        try:
            written = self.transport.log.append_groups(groups)
        except Exception as exc:  # a full disk, a closed log: every sender learns it
            for _, _, future in pending:
                if future is not None and not future.done():
                    future.set_exception(exc)
            if turn is not None and not turn.done():
                turn.set_exception(exc)
            return
        cursors = {tp: (iter(offsets), TP(*tp)) for tp, offsets in written.items()}
        new = tuple.__new__  # a NamedTuple's own __new__ is a Python function: 2x slower
        for (topic, partition), _, future in pending:
            offsets, tp = cursors[(topic, partition)]
            offset, timestamp_ms = next(offsets)
            if future is not None and not future.done():
                future.set_result(new(RecordMetadata, (topic, partition, tp, offset,
                                                       timestamp_ms / 1000.0, 0)))
        if turn is not None and not turn.done():
            turn.set_result(None)

    async def on_stop(self) -> None:
        self.write_pending()
        await super().on_stop()

    async def flush(self) -> None:
        self.write_pending()
        await self.buffer.flush()

    def key_partition(self, topic: str, key: bytes) -> TP:
        return TP(topic, self.transport.key_partition(topic, key))

    def supports_headers(self) -> bool:
        return True


class Transport(base.Transport):
    """Opens the embedded log and hands it to the consumer and producer."""

    Consumer: ClassVar[Type[Consumer]] = Consumer
    Producer: ClassVar[Type[Producer]] = Producer
    driver_version = "tillstream-embedded-1"

    def __init__(self, url, app, loop=None) -> None:
        super().__init__(url, app, loop=loop)
        path = url[0].path if url and url[0].path not in ("", "/") else None
        self.log_path = Path(path) if path else Path(app.conf.datadir) / "log"
        self._log: EmbeddedLog | None = None
        self._round_robin = 0

    @property
    def log(self) -> EmbeddedLog:
        if self._log is None or self._log.closed:
            self._log = EmbeddedLog.open(self.log_path)
        return self._log

    def declare_topic(self, topic: str, partitions: int, *,
                      config: Optional[Mapping[str, Any]] = None,
                      retention: Optional[Seconds] = None, compacting: Optional[bool] = None):
        config = dict(config or {})
        compacted = bool(compacting) or "compact" in str(config.get("cleanup.policy", ""))
        retention_ms = config.get("retention.ms")
        if retention_ms is None:
            retention_ms = DEFAULT_RETENTION_MS if retention is None else int(float(retention) * 1000)
        return self.log.create_topic(topic, partitions, compacted=compacted,
                                     retention_ms=int(retention_ms))

    def key_partition(self, topic: str, key: Optional[bytes],
                      partition: Optional[int] = None) -> int:
        if partition is not None:
            return partition
        meta = self.log.topic(topic)
        partitions = meta.partitions if meta else self.app.conf.topic_partitions
        if key is None:
            self._round_robin += 1
            return self._round_robin % partitions
        return partition_for(key, partitions)


def register() -> None:
    """Make ``embedded://`` URLs resolve to this transport (idempotent)."""
    from faust.transport.drivers import TRANSPORTS

    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
