"""A faust table's state, written a batch at a time: the record cache of Kafka Streams and the
checkpoint of quix-streams, on faust's own RocksDB partitions and changelog.

Writes made while handling a batch stay in a cache of dirty keys; ``flush`` then sends one
changelog record per changed key (not one per write), waits until the log has them, and writes
the partition's RocksDB in one ``WriteBatch`` together with the changelog offset it has read up
to. The changelog stays the truth: faust's recovery restores these tables exactly as it
restores tables written through ``table[key] = value``, because the records are the same
(raw key, raw value, a tombstone for a deletion) on the same changelog partitions.

Within a flush an owner's own key (no NUL: a member's state) is sent after the keys below it
(``<owner>\0...``: its ledger pages, messages). A crash can leave a prefix of a flush in the
changelog; that prefix never holds a state without the list entries it counts.

RocksDB writes skip its write-ahead log: the changelog is the truth, and the WriteBatch carries
the changelog offset it reached, so after a crash the table holds a consistent older point and
faust's recovery replays the changelog from there (as Kafka Streams does with its stores).

For the same reason the local write need not follow every flush. A store made with
``write_local_every`` (the member states: tables/members.py) keeps flushed values in memory
(``_waiting``, read before RocksDB) and gives a partition's to RocksDB together, at most
that many seconds or ``unwritten_at_most`` keys later, and every partition's before partitions
are given up or the worker stops; a waiting value that a batch put as an object is read back
as that object, not decoded again. A flush writes at most one partition's waiting values (the
one waiting longest): written all at once, a second's worth held the event loop up to 24 ms
once a second at 2,000 events/s, about the p99 the latency target allows. Measured
(bench/stage_timers.py, open loop at 2,000 events/s over HTTP, 2026-12-02): small batches wrote the same busy members to RocksDB and decoded them again every few
milliseconds — a state read took 29 µs per event (13.5 µs in the large batches of a throughput
run) and the local writes 21 µs (4.5 µs). Stores of small values (counters, analytics rows,
answers) gain nothing from it and write at every flush, as by default.

A key lives on the partition of its owner: the bytes before the first NUL (a member id, a
scenario id), hashed as Kafka's default partitioner does. While a batch is handled the
partition is known and set with :meth:`use_partition`, in a context variable, so that an HTTP
query answered while the batch awaits its effects does not see it; reads outside a batch hash
the key.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from contextlib import asynccontextmanager
from contextvars import ContextVar
from time import monotonic
from typing import Any, Callable, Iterator, NamedTuple, Optional

import faust
from rocksdict import WriteBatch, WriteOptions

from agents.batching import revoke_hooks_of
from agents.embedded_transport import partition_for
from agents.outgoing import wait_all
from agents.topics import CHANGELOG_CONFIGS


class Live(NamedTuple):
    """An object put in this batch, with how to encode it at the flush."""

    value: Any
    encode: Callable[[Any], bytes]


class Waiting:
    """A partition's flushed values that RocksDB has not got yet."""

    __slots__ = ("since", "values", "objects", "offset")

    def __init__(self, since: float) -> None:
        #: when (monotonic) the first of them was flushed
        self.since = since
        #: key -> raw value (None deletes), as in the changelog
        self.values: dict[bytes, Optional[bytes]] = {}
        #: key -> the object a batch put live, read back without decoding
        self.objects: dict[bytes, Any] = {}
        #: the changelog offset the values reach
        self.offset = -1


_MISSING = object()
_NOTHING: dict = {}
#: Keys that may wait for RocksDB in a store made with ``write_local_every`` (a busy member's
#: state is about 6 KB, and the object it was put as a few times that).
UNWRITTEN_AT_MOST = 8192


class BatchStore:
    """Dict-like access (get, set, pop, items) to one table, flushed once per batch."""

    def __init__(self, app: faust.App, name: str, *,
                 write_local_every: float = 0.0,
                 unwritten_at_most: int = UNWRITTEN_AT_MOST) -> None:
        self.app = app
        # key_type=bytes: the key serializer is raw, so the changelog key and the routing
        # hash are the owner's utf-8 bytes, as on the input topics.
        self.table = app.Table(name, key_type=bytes, value_type=bytes, default=None,
                               extra_topic_configs=CHANGELOG_CONFIGS)
        self.partitions = app.conf.topic_partitions
        self._partition: ContextVar[Optional[int]] = ContextVar(f"{name}-partition",
                                                                 default=None)
        #: partition -> key -> new raw value (None deletes)
        self._dirty: defaultdict[int, dict[bytes, Optional[bytes]]] = defaultdict(dict)
        #: the writes of the flush in progress, readable until RocksDB has them
        self._flushing: dict[int, dict[bytes, Optional[bytes]]] = {}
        #: the objects put live among them (partition -> key -> object)
        self._flushing_objects: dict[int, dict[bytes, Any]] = {}
        #: partition -> its values in the changelog, not yet in RocksDB; the partition waiting
        #: longest first
        self._waiting: dict[int, Waiting] = {}
        self.write_local_every = write_local_every
        self.unwritten_at_most = unwritten_at_most
        self._flush_lock = asyncio.Lock()
        self._write_options = WriteOptions()
        self._write_options.disable_wal = True
        if write_local_every > 0:
            revoke_hooks_of(app).append(self.write_local)
            app.on_before_shutdown.connect(self._write_local_at_shutdown)

    # -- partition of a key ------------------------------------------------------------------

    def use_partition(self, partition: Optional[int]) -> None:
        """The partition of the batch being handled (None outside a batch)."""
        self._partition.set(partition)

    def partition_of(self, key: bytes) -> int:
        partition = self._partition.get()
        if partition is not None:
            return partition
        return partition_for(key.split(b"\0", 1)[0], self.partitions)

    def _db(self, partition: int):
        return self.table.data._db_for_partition(partition)

    # -- dict-like access --------------------------------------------------------------------

    def get(self, key: bytes, default: Any = None) -> Optional[bytes]:
        partition = self.partition_of(key)
        value = self._cached(partition, key)
        if value is _MISSING:
            waiting = self._waiting.get(partition)
            if waiting is not None:
                value = waiting.values.get(key, _MISSING)
            if value is _MISSING:
                value = self._db(partition).get(key)
        elif type(value) is Live:
            value = value.encode(value.value)
        return default if value is None else value

    def get_live(self, key: bytes, decode: Callable[[bytes], Any]) -> Any:
        """The key's value as an object: the one put in this batch or waiting for RocksDB,
        else decoded."""
        partition = self.partition_of(key)
        value = self._cached(partition, key)
        if value is _MISSING:
            waiting = self._waiting.get(partition)
            if waiting is not None:
                value = waiting.objects.get(key, _MISSING)
                if value is not _MISSING:
                    return value
                value = waiting.values.get(key, _MISSING)
            if value is _MISSING:
                value = self._db(partition).get(key)
        elif type(value) is Live:
            return value.value
        return None if value is None else decode(value)

    def scan_live(self, prefix: bytes, decode: Callable[[bytes], Any]) -> dict[bytes, Any]:
        """Every key starting with ``prefix`` (all on the prefix owner's partition) with its
        value as an object, the writes not yet flushed included."""
        partition = self.partition_of(prefix)
        found: dict[bytes, Any] = {}
        for key, value in self._db(partition).items(from_key=prefix):
            if not key.startswith(prefix):
                break
            found[key] = value
        waiting = self._waiting.get(partition)
        for keys in (None if waiting is None else waiting.values, self._flushing.get(partition),
                     self._dirty.get(partition)):
            for key, value in (keys or _NOTHING).items():
                if key.startswith(prefix):
                    found[key] = value
        return {key: value.value if type(value) is Live else decode(value)
                for key, value in found.items() if value is not None}

    def _cached(self, partition: int, key: bytes) -> Any:
        """The key's value in this batch or the flush in progress (a Live object, raw bytes,
        None for a deletion), ``_MISSING`` if neither has it."""
        keys = self._dirty.get(partition)
        if keys is not None and key in keys:
            return keys[key]
        keys = self._flushing.get(partition)
        if keys is not None and key in keys:
            return keys[key]
        return _MISSING

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._dirty[self.partition_of(key)][key] = value

    def put_live(self, key: bytes, value: Any, encode: Callable[[Any], bytes]) -> None:
        """Keep an object as the key's value; it is encoded once, when the batch is flushed
        (a member written by ten events of a batch is encoded once, not ten times)."""
        self._dirty[self.partition_of(key)][key] = Live(value, encode)

    def put_live_last(self, key: bytes, value: Any, encode: Callable[[Any], bytes]) -> None:
        """``put_live``, and the key moves behind every key written before it in this batch:
        its changelog record follows theirs (a head that counts entries must not reach the
        changelog before them; a crash can leave a prefix of a flush there)."""
        keys = self._dirty[self.partition_of(key)]
        keys.pop(key, None)
        keys[key] = Live(value, encode)

    def pop(self, key: bytes, default: Any = None) -> Optional[bytes]:
        value = self.get(key)
        self._dirty[self.partition_of(key)][key] = None
        return default if value is None else value

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key of this worker's active partitions, with the writes not yet flushed."""
        cached: dict[bytes, Optional[bytes]] = {}
        for keys in [*(waiting.values for waiting in self._waiting.values()),
                     *self._flushing.values(), *self._dirty.values()]:
            cached.update(keys)
        for key, value in self.table.items():
            if key not in cached:
                yield key, value
        for key, value in cached.items():
            if type(value) is Live:
                yield key, value.encode(value.value)
            elif value is not None:
                yield key, value

    # -- flushing ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Make every write so far durable: changelog first, then the local RocksDB."""
        await flush_together(self)

    async def _send_changelog(self) -> dict[int, list]:
        """Move the dirty keys to ``_flushing`` and send one changelog record per key; returns
        partition -> ``(future, records)`` pairs, the last pair ending at the partition's last
        record.

        The embedded log writes one loop turn's records to a partition in order and all or
        none, so there only the last record of a partition gets a future of its own: a
        coroutine, a future and a RecordMetadata per record were 4-5 % of the worker. The
        Kafka producer takes the records as record batches (``send_records``), a future
        each."""
        self._flushing, self._dirty = self._dirty, defaultdict(dict)
        self._flushing_objects = {}
        topic = self.table.changelog_topic.get_topic_name()
        producer = self.app.producer
        append_this_turn = getattr(producer, "append_this_turn", None)  # embedded
        send_records = getattr(producer, "send_records", None)  # Kafka
        sent = {}
        batched = []
        waits = self.write_local_every > 0
        for partition, keys in self._flushing.items():
            objects = self._flushing_objects[partition] = {}
            for key, value in keys.items():
                if type(value) is Live:
                    keys[key] = value.encode(value.value)
                    if waits:  # read back from the waiting values without decoding
                        objects[key] = value.value
            if not keys:
                continue
            records = _owners_last(keys)
            if append_this_turn is not None:
                for key, value in records[:-1]:
                    append_this_turn(topic, key, value, partition)
                key, value = records[-1]
                sent[partition] = [(producer.send_this_turn(topic, key, value, partition), 1)]
            elif send_records is not None:
                batched.extend((topic, key, value, partition) for key, value in records)
            else:
                sent[partition] = [(await producer.send(topic, key, value, partition, None, None),
                                    1) for key, value in records]
        if batched:
            for batch in await send_records(batched):
                sent.setdefault(batch.partition, []).append((batch.future, batch.count))
        return sent

    def _write_local(self, sent: dict[int, list]) -> None:
        """RocksDB gets the flushed values with the changelog offset each partition reached: at
        once, or in a store made with ``write_local_every`` once they are due, with every value
        waiting."""
        offsets = {partition: max(future.result().offset + count - 1
                                  for future, count in futures)
                   for partition, futures in sent.items()}
        flushing, self._flushing = self._flushing, {}
        put_live, self._flushing_objects = self._flushing_objects, {}
        if self.write_local_every <= 0:
            for partition, offset in offsets.items():
                self._write_partition(partition, flushing[partition], offset)
            return
        now = monotonic()
        for partition, offset in offsets.items():
            waiting = self._waiting.get(partition)
            if waiting is None:
                waiting = self._waiting[partition] = Waiting(now)
            keys = flushing[partition]
            waiting.values.update(keys)
            objects = waiting.objects
            live = put_live.get(partition, _NOTHING)
            for key in keys:
                value = live.get(key, _MISSING)
                if value is _MISSING:
                    objects.pop(key, None)
                else:
                    objects[key] = value
            waiting.offset = offset
        if not self._waiting:  # a flush that sent nothing
            return
        partition, oldest = next(iter(self._waiting.items()))
        if (now - oldest.since >= self.write_local_every
                or sum(len(w.values) for w in self._waiting.values()) >= self.unwritten_at_most):
            self._write_waiting(partition)

    def _write_waiting(self, partition: int) -> None:
        """A partition's waiting values to RocksDB, with the changelog offset they reach."""
        waiting = self._waiting.pop(partition)
        self._write_partition(partition, waiting.values, waiting.offset)

    def _write_partition(self, partition: int, keys: dict[bytes, Optional[bytes]],
                         offset: int) -> None:
        """One RocksDB WriteBatch: the values, and the changelog offset they reach."""
        batch = WriteBatch(raw_mode=True)
        for key, value in keys.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(self.table.data.offset_key, str(offset).encode())
        self._db(partition).write(batch, self._write_options)

    async def write_local(self) -> None:
        """Give RocksDB every flushed value now (before partitions are given up: faust closes
        their databases and reads the offset they reached)."""
        async with self._flush_lock:
            for partition in list(self._waiting):
                self._write_waiting(partition)

    async def _write_local_at_shutdown(self, *_args: Any, **_kwargs: Any) -> None:
        await self.write_local()


@asynccontextmanager
async def handling(*stores: BatchStore):
    """Batches of one or several partitions handled in turn, each after ``use(partition)``:
    reads and writes go to that partition, and the writes of every partition and store are
    flushed together when all the batches end without an error (their changelog records in
    one round, as the producer batches them)."""
    def use(partition: Optional[int]) -> None:
        for store in stores:
            store.use_partition(partition)

    try:
        yield use
        await flush_together(*stores)
    finally:
        use(None)


async def flush_together(*stores: BatchStore) -> None:
    """Make every write of ``stores`` durable: all their changelog records are sent, awaited
    once, then each store writes its RocksDB partitions."""
    stores = tuple(sorted((store for store in stores if store._dirty), key=id))
    if not stores:
        return
    locks = [store._flush_lock for store in stores]  # always taken in the same order
    for lock in locks:
        await lock.acquire()
    try:
        sent = [await store._send_changelog() for store in stores]
        await wait_all([future for per_store in sent for futures in per_store.values()
                        for future, _ in futures])
        for store, per_store in zip(stores, sent):
            store._write_local(per_store)
    finally:
        for lock in locks:
            lock.release()


def _owners_last(keys: dict[bytes, Optional[bytes]]) -> list[tuple[bytes, Optional[bytes]]]:
    return ([item for item in keys.items() if b"\0" in item[0]]
            + [item for item in keys.items() if b"\0" not in item[0]])
