"""The batch path: records of chosen topics go to a handler a fetched batch at a time, below
faust's per-event Stream and Event objects.

faust spends most of its per-record time outside the agent: two tasks per message in the
consumer's ``wait_first``, a queue per stream, an Event and a context per record, a changelog
record and a RocksDB write per table write (NOTES.md, bench/RESULTS.md). A topic with a batch
handler skips all of that: the consumer hands the handler every record it fetched for one
partition, the handler writes its state and effects once for the batch, and the consumer then
marks every offset of the batch acknowledged, so faust's own commit loop commits them. A
*grouped* handler takes every partition of its topic in one fetch at once: a worker fed by
small requests gets a few records per partition per fetch, and one flush and one wait for
all of them cost a fraction of one per partition.

faust keeps everything else: group membership, partition assignment, pausing partitions while
their tables recover, offset commits, table routing and the web server. Topics without a
handler (config, outbox, fan-out) take faust's ordinary path, with a fast path for callbacks
that do not suspend. A table changelog's records under recovery go straight to the table a
batch at a time (tables/changelog_restore.py).

Rebalances wait for the batch in flight (``on_partitions_revoked`` takes the same lock), so a
worker never writes state or commits for a partition after giving it up; a batch fetched
before a rebalance and handled after it is dropped (its offsets were not committed, so the new
owner reads them again).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, NamedTuple, Optional, Set

from faust.types import TP

from agents.collector import collect_if_due
from tables.changelog_restore import restore_batch

class BatchRecord(NamedTuple):
    """A record as batch handlers see it: the part of faust's ``ConsumerMessage`` they read,
    for a fraction of its cost (a ConsumerMessage per record was ~7 % of a minimal worker)."""

    topic: str
    partition: int
    offset: int
    timestamp: Optional[float]  #: seconds since the epoch (the log's create time)
    key: Optional[bytes]
    value: Optional[bytes]
    #: validated by this worker's HTTP API before it was written. Only the embedded log says
    #: so (``CHECKED_HEADER``, agents/embedded_transport.py): nothing outside the worker writes
    #: to it, whereas anything that may produce to a Kafka topic could forge the header.
    checked: bool = False


BatchHandler = Callable[[TP, list[BatchRecord]], Awaitable[None]]
#: Takes ``[(tp, records), ...]``: every partition of the topic in one fetch, in one call.
GroupedBatchHandler = Callable[[list[tuple[TP, list[BatchRecord]]]], Awaitable[None]]


def handlers_of(app) -> dict[str, BatchHandler | GroupedBatchHandler]:
    """Topic name -> handler; kept on the app (``app.batch_handlers``) for its consumer."""
    handlers = getattr(app, "batch_handlers", None)
    if handlers is None:
        handlers = app.batch_handlers = {}
    return handlers


def grouped_of(app) -> set[str]:
    """Topics whose handlers take all their partitions of a fetch at once
    (``app.batch_grouped``)."""
    topics = getattr(app, "batch_grouped", None)
    if topics is None:
        topics = app.batch_grouped = set()
    return topics


def self_acking_of(app) -> set[str]:
    """Topics whose handlers acknowledge each record themselves (``app.batch_self_acking``)."""
    topics = getattr(app, "batch_self_acking", None)
    if topics is None:
        topics = app.batch_self_acking = set()
    return topics


def urgent_of(app) -> set[str]:
    """Topics on the event-to-effect path (``app.batch_urgent``): while they have records
    waiting, a fetch of the embedded transport leaves the other topics for a little later
    (agents/embedded_transport.py ``Consumer._fetch``)."""
    topics = getattr(app, "batch_urgent", None)
    if topics is None:
        topics = app.batch_urgent = set()
    return topics


def revoke_hooks_of(app) -> list[Callable[[], Awaitable[None]]]:
    """Coroutines run before the worker gives partitions up (``app.batch_revoke_hooks``), with
    no batch in flight: handlers that hold applied but unacknowledged records flush them."""
    hooks = getattr(app, "batch_revoke_hooks", None)
    if hooks is None:
        hooks = app.batch_revoke_hooks = []
    return hooks


def batch_agent(app, topic, name: str, handler: BatchHandler | GroupedBatchHandler, *,
                self_acking: bool = False, grouped: bool = False, urgent: bool = False) -> None:
    """Send ``topic``'s records to ``handler`` a fetched batch at a time. The faust agent
    declared here only subscribes the topic (and co-partitions the tables) for faust.

    ``self_acking``: the handler returns before its records are done (it starts work that
    finishes later, such as deliveries) and acknowledges each record with
    :meth:`BatchDrainMixin.acknowledge` when it is; otherwise the batch is acknowledged when
    the handler returns.

    ``grouped``: ``handler`` is a :data:`GroupedBatchHandler`.

    ``urgent``: the topic's records come before other topics' (:func:`urgent_of`)."""
    handlers_of(app)[topic.get_topic_name()] = handler
    if self_acking:
        self_acking_of(app).add(topic.get_topic_name())
    if grouped:
        grouped_of(app).add(topic.get_topic_name())
    if urgent:
        urgent_of(app).add(topic.get_topic_name())

    async def subscribe(stream):
        async for _ in stream:
            raise RuntimeError(f"{topic.get_topic_name()} records must take the batch path")

    app.agent(topic, name=name)(subscribe)


class BatchDrainMixin:
    """Mixed into a faust ``Consumer`` before the driver's class; replaces ``_drain_messages``."""

    _batch_lock: Optional[asyncio.Lock] = None

    @property
    def batch_lock(self) -> asyncio.Lock:
        if self._batch_lock is None:
            self._batch_lock = asyncio.Lock()
        return self._batch_lock

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        async with self.batch_lock:
            if revoked:
                for hook in revoke_hooks_of(self.app):
                    await hook()
            await super().on_partitions_revoked(revoked)

    async def _drain_messages(self, fetcher) -> None:
        handlers = handlers_of(self.app)
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    await self.perform_seek()
                    continue
                await self._deliver_fetch(records, active, handlers)
                del records, active  # the fetch's objects are freed before a collection
                collect_if_due()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise

    async def _deliver_fetch(self, records: dict, active: Optional[Set[TP]],
                             handlers: dict) -> None:
        """One fetch: batch topics to their handlers, topic by topic, other topics one record
        at a time; then a commit if enough records were acknowledged."""
        generation = self.app.consumer_generation_id
        per_topic: dict[str, list[tuple[TP, list]]] = {}
        for tp, batch in records.items():
            if self.app.consumer_generation_id != generation or not self.flow_active:
                break
            if (active is not None and tp not in active
                    and tp not in self._buffered_partitions):
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in handlers:
                per_topic.setdefault(tp.topic, []).append((tp, batch))
            elif not self._restore(tp, batch):
                await self._deliver_one_by_one(tp, batch)
        for topic, batches in per_topic.items():
            if self.app.consumer_generation_id != generation or not self.flow_active:
                break
            await self._deliver_batches(handlers[topic], topic, batches, generation)
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    def _unread(self, tp: TP, batch: list) -> list:
        read = self._read_offset[tp]
        if read is None:
            return batch
        return [record for record in batch if record.offset >= read]

    async def _deliver_batches(self, handler: BatchHandler | GroupedBatchHandler, topic: str,
                               batches: list[tuple[TP, list]], generation: int) -> None:
        """A fetch's batches of ``topic`` to its handler: in one call if it is grouped, else
        partition by partition; then their offsets are acknowledged (unless it is
        self-acking)."""
        app = self.app
        async with self.batch_lock:
            if app.consumer_generation_id != generation:
                return
            assigned = self.assignment()
            to_record = self._to_batch_record
            group = []
            for tp, batch in batches:
                if tp in assigned:
                    messages = [to_record(record) for record in self._unread(tp, batch)]
                    if messages:
                        group.append((tp, messages))
            if not group:
                return
            if topic in grouped_of(app):
                await handler(group)
            else:
                for tp, messages in group:
                    await handler(tp, messages)
            acking = topic not in self_acking_of(app)
            for tp, messages in group:
                if acking:
                    self._ack_offsets(tp, messages[0].offset, messages[-1].offset)
                self._read_offset[tp] = messages[-1].offset

    def acknowledge(self, tp: TP, offset: int, generation: int,
                    last: Optional[int] = None) -> None:
        """Acknowledge a record of a self-acking topic (or the records ``offset..last``),
        fetched in consumer generation ``generation`` — unless the partition was given up
        since (its new owner reads the record again: at least once). faust commits up to the
        first offset not acknowledged."""
        if self.app.consumer_generation_id != generation or tp not in self.assignment():
            return
        self._mark_acked(tp, offset, offset if last is None else last)

    @staticmethod
    def _to_batch_record(record) -> BatchRecord:
        """The driver's fetched record as a :class:`BatchRecord`."""
        raise NotImplementedError

    def _restore(self, tp: TP, batch: list) -> bool:
        """A table changelog's batch under recovery goes straight to its table
        (tables/changelog_restore.py); False for any other partition."""
        recovery = self.app.tables.recovery
        if tp not in recovery.tp_to_table:
            return False
        unread = self._unread(tp, batch)
        if not unread:
            return True
        to_message = self._to_message
        if not restore_batch(recovery, tp,
                             [to_message(tp, record) for record in unread]):
            return False
        self._read_offset[tp] = unread[-1].offset
        return True

    def _ack_offsets(self, tp: TP, first: int, last: int) -> None:
        """What ``Consumer.ack`` does per message, for a contiguous run of offsets (a gap in
        the log — compaction, transaction markers — needs no ack of its own)."""
        read = self._read_offset[tp]
        if read is not None and read + 1 < first:
            first = read + 1
        self._mark_acked(tp, first, last)

    def _mark_acked(self, tp: TP, first: int, last: int) -> None:
        """Record offsets ``first..last`` acknowledged (those at or past the committed offset
        and not yet acknowledged), for faust's commit loop."""
        committed = self._committed_offset[tp]
        if committed is not None:
            first = max(first, committed)
        index = self._acked_index[tp]
        acked = self._acked[tp]
        new = [offset for offset in range(first, last + 1) if offset not in index]
        index.update(new)
        acked.extend(new)
        self._n_acked += len(new)

    async def _deliver_one_by_one(self, tp: TP, batch: list) -> None:
        """faust's own path for topics without a batch handler (config, outbox, changelogs
        under recovery), with a fast path: faust awaits every message's callback in
        ``wait_first`` beside the flow-suspension event — four tasks per message. Most
        callbacks finish without suspending (the stream's buffer has room), so the callback
        runs inline up to its first suspension, and only one that does suspend is finished
        under ``wait_first``, where a rebalance can still interrupt it."""
        callback = self.callback
        to_message = self._to_message
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        for record in batch:
            if not self.flow_active:
                return
            offset = record.offset
            read = self._read_offset[tp]
            if read is not None and offset < read:
                continue
            if read and offset - read > 1 and acks_enabled:
                await self._add_gap(tp, read + 1, offset)
            running = callback(to_message(tp, record))
            try:
                waiting_on = running.send(None)
            except StopIteration:
                pass
            else:
                await self.wait_first(_resume(running, waiting_on), self.suspend_flow.wait())
            self._read_offset[tp] = offset


async def _resume(running, waiting_on) -> None:
    """Drive a coroutine from its first suspension on (it was waiting on ``waiting_on``: a
    future, or None for a bare yield)."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait((waiting_on,))
        except BaseException:
            running.close()
            raise
        try:
            waiting_on = running.send(None)
        except StopIteration:
            return
