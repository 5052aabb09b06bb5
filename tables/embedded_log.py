"""The embedded, durable, partitioned log behind the default (broker-less) runtime mode.

One RocksDB database (rocksdict) per data directory holds, for every topic partition, records
keyed by offset, plus topic metadata and committed consumer-group offsets. RocksDB's write-ahead
log makes every append durable against a crash of the process (``kill -9``); it is not fsynced
per write, so a power loss may lose the last few milliseconds (the same trade-off as Kafka's
default ``acks=1`` without ``flush.messages``).

Disk stays bounded: compacted topics (``cleanup.policy=compact``, faust's changelogs) keep
only the newest record per key once :meth:`EmbeddedLog.compact` runs; other topics drop records
older than their ``retention.ms``.

Key layout (all integers big-endian, so RocksDB's byte order is offset order):
``r`` + topic + ``\\0`` + partition(u32) + offset(u64) -> record
``t`` + topic -> topic metadata (JSON)
``c`` + group + ``\\0`` + topic + ``\\0`` + partition(u32) -> committed offset (u64)
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator, Iterator, Sequence

import orjson
from rocksdict import AccessType, Options, Rdict, ReadOptions, WriteBatch

DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000
#: Records per partition kept in memory once appended (up to twice as many between trims), for
#: topics that are not compacted. Consumers at the end of the log — the usual case — read them
#: there: a RocksDB iterator's seek costs more the larger the log has grown (9 % of a loyalty
#: worker's CPU, measured). Changelogs (compacted) are read only while a table recovers, from
#: RocksDB; their pages would only cost memory here.
TAIL_RECORDS = 1024
#: Records read per step of a maintenance pass (compaction, retention) between two turns of
#: the worker's event loop: about 1-2 ms of it, where a step of 2,000 held events up 5-10 ms
#: (measured in an open-loop run; RocksDB still stalls the odd step for up to 50 ms).
STEP_RECORDS = 500
#: Read-ahead of a compaction's scan, which reads a whole partition in order.
SCAN_READAHEAD = 2 << 20
#: The directory of a compaction reader's RocksDB secondary instance: the log's, with this.
SECONDARY_SUFFIX = "-compaction-reader"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
# timestamp (ms), key length (-1 = None), value length (-1 = None), header count
_RECORD_HEAD = struct.Struct(">qiiH")
_HEADER_LENS = struct.Struct(">HI")


@dataclass(slots=True)
class LogRecord:
    """One record as stored and as handed to consumers."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class TopicMeta:
    partitions: int
    compacted: bool = False
    retention_ms: int | None = DEFAULT_RETENTION_MS


def encode_record(timestamp_ms: int, key: bytes | None, value: bytes | None,
                  headers: Sequence[tuple[str, bytes]] = ()) -> bytes:
    parts = [_RECORD_HEAD.pack(timestamp_ms, -1 if key is None else len(key),
                               -1 if value is None else len(value), len(headers))]
    if key is not None:
        parts.append(key)
    if value is not None:
        parts.append(value)
    for name, hvalue in headers:
        name_b = name.encode()
        parts.append(_HEADER_LENS.pack(len(name_b), len(hvalue)))
        parts.append(name_b)
        parts.append(hvalue)
    return b"".join(parts)


def _record_key(raw: bytes) -> bytes | None:
    """The key of an encoded record, without decoding the rest."""
    klen = _RECORD_HEAD.unpack_from(raw, 0)[1]
    return None if klen < 0 else raw[_RECORD_HEAD.size:_RECORD_HEAD.size + klen]


def decode_record(topic: str, partition: int, offset: int, raw: bytes) -> LogRecord:
    timestamp_ms, klen, vlen, nheaders = _RECORD_HEAD.unpack_from(raw, 0)
    pos = _RECORD_HEAD.size
    key = None
    if klen >= 0:
        key = raw[pos:pos + klen]
        pos += klen
    value = None
    if vlen >= 0:
        value = raw[pos:pos + vlen]
        pos += vlen
    headers: list[tuple[str, bytes]] = []
    for _ in range(nheaders):
        nlen, hlen = _HEADER_LENS.unpack_from(raw, pos)
        pos += _HEADER_LENS.size
        name = raw[pos:pos + nlen].decode()
        pos += nlen
        headers.append((name, raw[pos:pos + hlen]))
        pos += hlen
    return LogRecord(topic, partition, offset, timestamp_ms, key, value, headers)


def _partition_prefix(topic: str, partition: int) -> bytes:
    return b"r" + topic.encode() + b"\0" + _U32.pack(partition)


def _commit_key(group: str, topic: str, partition: int) -> bytes:
    return b"c" + group.encode() + b"\0" + topic.encode() + b"\0" + _U32.pack(partition)


def _scan_options() -> ReadOptions:
    """A compaction's scan: read ahead, and keep what it reads out of the block cache, which
    holds the records consumers and tables read (measured on 200,000 records of 3 KB: 1.0 µs a
    record against 1.7-2.0 with the defaults)."""
    options = ReadOptions()
    options.fill_cache(False)
    options.set_readahead_size(SCAN_READAHEAD)
    return options


def _scan_stale(db: Rdict, prefix: bytes, upto: int
                ) -> Generator[int, None, tuple[list[bytes], int]]:
    """Scan a partition's records below offset ``upto``; returns the RocksDB keys of those a
    newer one of the same record key supersedes, and how many record keys there are. Yields
    0 every ``STEP_RECORDS`` records read."""
    newest: dict[bytes | None, bytes] = {}
    stale: list[bytes] = []
    end = prefix + _U64.pack(upto)
    for seen, (raw_key, raw) in enumerate(db.items(from_key=prefix, read_opt=_scan_options()),
                                          1):
        if raw_key >= end or not raw_key.startswith(prefix):
            break
        record_key = _record_key(raw)
        previous = newest.get(record_key)
        if previous is not None:
            stale.append(previous)
        newest[record_key] = raw_key
        if seen % STEP_RECORDS == 0:
            yield 0
    return stale, len(newest)


def _to_the_end(steps: Generator[int, None, tuple[list[bytes], int]]
                 ) -> tuple[list[bytes], int]:
    """Run a scan's steps without pausing; its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def find_stale(path: str, topic: str, ends: dict[int, int]) -> dict[int, tuple[bytes, int]]:
    """A compaction's scan, run in a process of its own (tables/compaction_scan.py) on a
    RocksDB secondary instance of the log at ``path``: partition -> (the offsets of its stale
    records below ``ends[partition]``, 8 bytes each, and its record keys' count), for
    :meth:`EmbeddedLog.delete_stale_steps`."""
    secondary = Path(path + SECONDARY_SUFFIX)
    for old_info_log in secondary.glob("LOG.old.*"):  # one per pass; a secondary keeps them all
        old_info_log.unlink(missing_ok=True)
    options = Options(raw_mode=True)
    options.set_max_open_files(-1)  # a secondary keeps every file it reads open
    db = Rdict(path, options=options, access_type=AccessType.secondary(str(secondary)))
    try:
        db.try_catch_up_with_primary()
        found = {}
        for partition, upto in ends.items():
            prefix = _partition_prefix(topic, partition)
            stale, keys = _to_the_end(_scan_stale(db, prefix, upto))
            found[partition] = (b"".join(key[len(prefix):] for key in stale), keys)
        return found
    finally:
        db.close()


class EmbeddedLog:
    """A durable partitioned log in one RocksDB database; one instance per path per process."""

    _open_logs: dict[Path, "EmbeddedLog"] = {}
    _open_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> "EmbeddedLog":
        """Return the process-wide log at ``path``, opening it on first use.

        RocksDB allows one opener per directory, so an app restarted inside the same process
        (tests do this) must get the already-open instance rather than a lock error.
        """
        resolved = Path(path).resolve()
        with cls._open_lock:
            log = cls._open_logs.get(resolved)
            if log is None or log.closed:
                log = cls(resolved)
                cls._open_logs[resolved] = log
            return log

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self.path = path
        self.closed = False
        self._db = Rdict(str(path), options=options)
        self._topics: dict[str, TopicMeta] = {}
        self._end: dict[tuple[str, int], int] = {}
        self._start: dict[tuple[str, int], int] = {}
        self._appended_since_compaction: dict[str, int] = {}
        #: records a compacted topic kept at its last compaction in this process
        self._kept_at_compaction: dict[str, int] = {}
        self._listeners: list = []
        #: partition -> (offset of its first record, the records last appended, in order), as
        #: tuples of bytes and numbers, which the cyclic collector does not track
        self._tail: dict[tuple[str, int], tuple[int, list[tuple]]] = {}
        self._load()

    def _load(self) -> None:
        for raw_key, raw_meta in self._db.items(from_key=b"t"):
            if not raw_key.startswith(b"t"):
                break
            meta = orjson.loads(raw_meta)
            topic = raw_key[1:].decode()
            self._topics[topic] = TopicMeta(meta["partitions"], meta["compacted"], meta["retention_ms"])
            for partition in range(meta["partitions"]):
                self._scan_bounds(topic, partition)

    def _scan_bounds(self, topic: str, partition: int) -> None:
        """Set a partition's start and end offsets from what is on disk.

        The end offset never moves back: when retention has emptied a partition, the stored
        start marker (``s`` + partition) remembers where the next offset begins.
        """
        prefix = _partition_prefix(topic, partition)
        first, last = self._first_last(prefix)
        stored = self._db.get(b"s" + prefix[1:])
        floor = 0 if stored is None else _U64.unpack(stored)[0]
        tp = (topic, partition)
        self._end[tp] = max(floor, 0 if last is None else last + 1, self._end.get(tp, 0))
        self._start[tp] = max(floor, self._end[tp] if first is None else first)

    def _first_last(self, prefix: bytes) -> tuple[int | None, int | None]:
        it = self._db.iter()
        it.seek(prefix)
        if not (it.valid() and it.key().startswith(prefix)):
            return None, None
        first = _U64.unpack(it.key()[len(prefix):])[0]
        it.seek_for_prev(prefix + b"\xff" * 8)
        return first, _U64.unpack(it.key()[len(prefix):])[0]

    # -- topics ------------------------------------------------------------------------------

    def create_topic(self, topic: str, partitions: int, *, compacted: bool = False,
                     retention_ms: int | None = DEFAULT_RETENTION_MS) -> TopicMeta:
        """Create a topic if it does not exist; an existing topic keeps its partition count."""
        existing = self._topics.get(topic)
        if existing is not None:
            return existing
        meta = TopicMeta(partitions, compacted, None if compacted else retention_ms)
        self._db[b"t" + topic.encode()] = orjson.dumps(
            {"partitions": meta.partitions, "compacted": meta.compacted,
             "retention_ms": meta.retention_ms})
        self._topics[topic] = meta
        for partition in range(partitions):
            self._end[(topic, partition)] = 0
            self._start[(topic, partition)] = 0
        return meta

    def topic(self, topic: str) -> TopicMeta | None:
        return self._topics.get(topic)

    def topics(self) -> dict[str, TopicMeta]:
        return dict(self._topics)

    # -- producing ---------------------------------------------------------------------------

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
               timestamp_ms: int | None = None,
               headers: Sequence[tuple[str, bytes]] = ()) -> tuple[int, int]:
        """Append one record; returns (offset, timestamp_ms)."""
        return self.append_many(topic, partition, [(key, value, timestamp_ms, headers)])[0]

    def append_many(self, topic: str, partition: int,
                    records: Sequence[tuple[bytes | None, bytes | None, int | None,
                                            Sequence[tuple[str, bytes]]]]) -> list[tuple[int, int]]:
        """Append records to one partition in one RocksDB write batch."""
        return self.append_groups({(topic, partition): list(records)})[(topic, partition)]

    def append_groups(self, groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None,
                                                                     int | None, Sequence]]]
                      ) -> dict[tuple[str, int], list[tuple[int, int]]]:
        """Append records to several partitions in one RocksDB write batch; returns each
        partition's (offset, timestamp_ms) pairs in order."""
        now_ms = int(time.time() * 1000)
        batch = WriteBatch(raw_mode=True)
        written: dict[tuple[str, int], list[tuple[int, int]]] = {}
        ends: dict[tuple[str, int], int] = {}
        for (topic, partition), records in groups.items():
            meta = self._topics.get(topic)
            if meta is None:
                raise KeyError(f"unknown topic {topic!r}")
            if not 0 <= partition < meta.partitions:
                raise ValueError(f"topic {topic!r} has no partition {partition}")
            prefix = _partition_prefix(topic, partition)
            offset = self._end[(topic, partition)]
            out = written[(topic, partition)] = []
            for key, value, timestamp_ms, headers in records:
                ts = now_ms if timestamp_ms is None else timestamp_ms
                batch.put(prefix + _U64.pack(offset), encode_record(ts, key, value, headers))
                out.append((offset, ts))
                offset += 1
            ends[(topic, partition)] = offset
        self._db.write(batch)
        for tp, offset in ends.items():
            self._appended_since_compaction[tp[0]] = (
                self._appended_since_compaction.get(tp[0], 0) + offset - self._end[tp])
            if not self._topics[tp[0]].compacted:
                self._keep_tail(tp, groups[tp], written[tp])
            self._end[tp] = offset
        for listener in self._listeners:
            listener()
        return written

    def _keep_tail(self, tp: tuple[str, int], records: list, written: list) -> None:
        """Keep the records just appended to ``tp`` in its tail (they follow the tail's
        last record: every append goes through ``append_groups``)."""
        tail = self._tail.get(tp)
        if tail is None or tail[0] + len(tail[1]) != self._end[tp]:
            tail = self._tail[tp] = (self._end[tp], [])
        topic, partition = tp
        kept = tail[1]
        for (key, value, _, headers), (offset, timestamp_ms) in zip(records, written):
            kept.append((offset, timestamp_ms, key, value, tuple(headers) if headers else ()))
        if len(kept) > 2 * TAIL_RECORDS:
            dropped = len(kept) - TAIL_RECORDS
            self._tail[tp] = (tail[0] + dropped, kept[dropped:])

    def add_listener(self, callback) -> None:
        """Call ``callback()`` after every append (consumers use it to wake up)."""
        self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    # -- consuming ---------------------------------------------------------------------------

    def read(self, topic: str, partition: int, offset: int, max_records: int) -> list[LogRecord]:
        """Records at or after ``offset`` (gaps left by compaction are skipped)."""
        tp = (topic, partition)
        end = self._end.get(tp, 0)
        if offset >= end:
            return []
        tail = self._tail.get(tp)
        if tail is not None and offset >= tail[0]:
            index = offset - tail[0]
            return [LogRecord(topic, partition, kept_offset, timestamp_ms, key, value,
                              list(headers))
                    for kept_offset, timestamp_ms, key, value, headers
                    in tail[1][index:index + max_records]]
        prefix = _partition_prefix(topic, partition)
        plen = len(prefix)
        out: list[LogRecord] = []
        for raw_key, raw in self._db.items(from_key=prefix + _U64.pack(max(offset, 0))):
            if not raw_key.startswith(prefix):
                break
            out.append(decode_record(topic, partition, _U64.unpack(raw_key[plen:])[0], raw))
            if len(out) >= max_records:
                break
        return out

    def end_offset(self, topic: str, partition: int) -> int:
        """The high-water mark: the offset the next record will get."""
        return self._end.get((topic, partition), 0)

    def start_offset(self, topic: str, partition: int) -> int:
        """The earliest offset still readable."""
        return self._start.get((topic, partition), 0)

    # -- consumer groups ---------------------------------------------------------------------

    def commit(self, group: str, offsets: dict[tuple[str, int], int]) -> None:
        batch = WriteBatch(raw_mode=True)
        for (topic, partition), offset in offsets.items():
            batch.put(_commit_key(group, topic, partition), _U64.pack(offset))
        self._db.write(batch)

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        raw = self._db.get(_commit_key(group, topic, partition))
        return None if raw is None else _U64.unpack(raw)[0]

    # -- bounded disk ------------------------------------------------------------------------

    def compact(self, topic: str) -> int:
        """Keep only the newest record per key in every partition; returns records removed."""
        return sum(self.compaction_steps(topic))

    def compaction_steps(self, topic: str) -> Iterator[int]:
        """``compact`` in steps of at most ``STEP_RECORDS`` records read or deleted; yields the
        records removed by each step (often 0)."""
        ends, appended = self.compaction_snapshot(topic)
        kept = 0
        for partition, upto in ends.items():
            stale, keys = yield from _scan_stale(self._db, _partition_prefix(topic, partition),
                                                 upto)
            kept += keys
            yield from self._delete_steps(stale)
            self._scan_bounds(topic, partition)
        self._compacted(topic, kept, appended)

    def compaction_snapshot(self, topic: str) -> tuple[dict[int, int], int]:
        """Where a compaction of ``topic`` starting now reads up to: each partition's end
        offset; and the records appended since the last compaction."""
        meta = self._topics[topic]
        ends = {partition: self._end[(topic, partition)] for partition in range(meta.partitions)}
        return ends, self._appended_since_compaction.get(topic, 0)

    def delete_stale_steps(self, topic: str, stale: dict[int, tuple[bytes, int]],
                           appended: int) -> Iterator[int]:
        """Finish a compaction whose scan ran elsewhere (:func:`find_stale`, from
        :meth:`compaction_snapshot`): delete the stale records in steps; yields the records
        each step removed."""
        kept = 0
        for partition, (offsets, keys) in stale.items():
            prefix = _partition_prefix(topic, partition)
            kept += keys
            yield from self._delete_steps([prefix + offsets[i:i + 8]
                                           for i in range(0, len(offsets), 8)])
            self._scan_bounds(topic, partition)
        self._compacted(topic, kept, appended)

    def _compacted(self, topic: str, kept: int, appended: int) -> None:
        """A compaction that started when ``appended`` records had been appended since the
        previous one has kept ``kept`` records: what is appended from now on counts toward
        the next one (with what was appended while it ran)."""
        self._appended_since_compaction[topic] = max(
            0, self._appended_since_compaction.get(topic, 0) - appended)
        self._kept_at_compaction[topic] = kept

    def apply_retention(self, topic: str, now_ms: int | None = None) -> int:
        """Drop records older than the topic's retention; returns records removed."""
        return sum(self._retention_steps(topic, now_ms))

    def _retention_steps(self, topic: str, now_ms: int | None) -> Iterator[int]:
        meta = self._topics[topic]
        if meta.retention_ms is None:
            return
        cutoff = (int(time.time() * 1000) if now_ms is None else now_ms) - meta.retention_ms
        for partition in range(meta.partitions):
            prefix = _partition_prefix(topic, partition)
            expired: list[bytes] = []
            for raw_key, raw in self._db.items(from_key=prefix):
                if not raw_key.startswith(prefix):
                    break
                if _RECORD_HEAD.unpack_from(raw, 0)[0] >= cutoff:
                    break
                expired.append(raw_key)
                if len(expired) % STEP_RECORDS == 0:
                    yield 0
            if expired:
                last = _U64.unpack(expired[-1][len(prefix):])[0]
                yield from self._delete_steps(expired, (b"s" + prefix[1:], _U64.pack(last + 1)))
                self._tail.pop((topic, partition), None)
            self._scan_bounds(topic, partition)
            yield 0

    def _delete_steps(self, keys: list[bytes],
                      last_put: tuple[bytes, bytes] | None = None) -> Iterator[int]:
        """Delete ``keys`` in writes of at most ``STEP_RECORDS`` (one write of 11,000
        deletions took 30 ms of a busy loop), ``last_put`` written with the last of them;
        yields the records each write removed."""
        for start in range(0, len(keys), STEP_RECORDS):
            chunk = keys[start:start + STEP_RECORDS]
            batch = WriteBatch(raw_mode=True)
            for raw_key in chunk:
                batch.delete(raw_key)
            if last_put is not None and start + STEP_RECORDS >= len(keys):
                batch.put(*last_put)
            self._db.write(batch)
            yield len(chunk)

    def maintain(self, now_ms: int | None = None) -> int:
        """Compact changelogs that have grown and apply retention elsewhere; returns records
        removed."""
        return sum(self.maintenance_steps(now_ms))

    def maintenance_steps(self, now_ms: int | None = None) -> Iterator[int]:
        """``maintain`` in steps of at most ``STEP_RECORDS`` records read, yielding the
        records removed by each, every scan in this process. A worker runs the same pass with
        each compaction's scan in a process of its own (agents/embedded_transport.py
        ``Consumer._maintain_log``), and its steps paced between other work."""
        for topic in self.compaction_due():
            yield from self.compaction_steps(topic)
        yield from self.retention_steps(now_ms)

    def compaction_due(self) -> list[str]:
        """The compacted topics to compact now.

        A compacted topic is rewritten once the records appended since its last compaction
        reach ``compaction_min_records`` and half the records it kept then (Kafka's
        ``min.cleanable.dirty.ratio`` of 0.5), so a record is read about three times in all,
        however large the topic grows. (A fixed 10,000 made a changelog of a million list
        items be read whole every 30 s.) After a restart the first compaction comes at
        ``compaction_min_records``, and counts what the topic keeps.
        """
        return [topic for topic, meta in self._topics.items() if meta.compacted
                and self._appended_since_compaction.get(topic, 0)
                >= max(self.compaction_min_records,
                       self.compaction_dirty_ratio * self._kept_at_compaction.get(topic, 0))]

    def retention_steps(self, now_ms: int | None = None) -> Iterator[int]:
        """Retention over every topic that is not compacted, in steps (``maintenance_steps``)."""
        for topic, meta in list(self._topics.items()):
            if not meta.compacted:
                yield from self._retention_steps(topic, now_ms)

    #: Records appended to a compacted topic since its last compaction before the next one,
    #: at least (``maintenance_steps``).
    compaction_min_records = 10_000
    #: ... and at least this share of the records it kept at its last compaction.
    compaction_dirty_ratio = 0.5

    def record_count(self, topic: str) -> int:
        """Records physically kept for ``topic`` (tests and metrics)."""
        meta = self._topics[topic]
        count = 0
        for partition in range(meta.partitions):
            prefix = _partition_prefix(topic, partition)
            for raw_key in self._db.keys(from_key=prefix):
                if not raw_key.startswith(prefix):
                    break
                count += 1
        return count

    def flush(self) -> None:
        self._db.flush()

    def close(self) -> None:
        if not self.closed:
            self._db.close()
            self.closed = True
            with self._open_lock:
                if self._open_logs.get(self.path) is self:
                    del self._open_logs[self.path]
