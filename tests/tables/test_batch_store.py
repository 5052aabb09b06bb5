"""The batch store: writes cached per batch, one changelog record per changed key, one RocksDB
WriteBatch per partition, and the changelog offset reached kept with the data."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import faust
import pytest
from rocksdict import Options, Rdict

from agents import embedded_transport
from tables.batch_store import BatchStore, handling

OFFSET_KEY = b"__faust\0offset__"


class FakeTable:
    """What BatchStore uses of a faust table on the rocksdb store."""

    def __init__(self, path) -> None:
        self.path = path
        self.dbs: dict[int, Rdict] = {}
        self.data = SimpleNamespace(offset_key=OFFSET_KEY, _db_for_partition=self.db)
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-members-changelog")

    def db(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.path / f"p{partition}"), Options(raw_mode=True))
        return self.dbs[partition]

    def items(self):
        for db in self.dbs.values():
            for key, value in db.items():
                if key != OFFSET_KEY:
                    yield key, value


class FakeLog:
    """A producer whose sends resolve when ``release`` is called (or at once)."""

    def __init__(self, hold: bool = False) -> None:
        self.records: list[tuple[str, bytes, bytes | None, int]] = []
        self.hold = hold
        self.pending: list[asyncio.Future] = []

    async def send(self, topic, key, value, partition, timestamp, headers):
        self.records.append((topic, key, value, partition))
        future = asyncio.get_running_loop().create_future()
        result = SimpleNamespace(offset=len(self.records) - 1)
        if self.hold:
            self.pending.append((future, result))
        else:
            future.set_result(result)
        return future

    def release(self) -> None:
        for future, result in self.pending:
            future.set_result(result)
        self.pending = []


class FakeSignal:
    """faust's ``app.on_before_shutdown``: receivers connected, then sent the app."""

    def __init__(self) -> None:
        self.receivers: list = []

    def connect(self, receiver) -> None:
        self.receivers.append(receiver)


def fake_app(table: FakeTable, producer) -> SimpleNamespace:
    """What BatchStore uses of a faust app."""
    return SimpleNamespace(conf=SimpleNamespace(topic_partitions=4), producer=producer,
                           Table=lambda name, **options: table,
                           on_before_shutdown=FakeSignal())


def make_store(tmp_path, log: FakeLog, **options) -> tuple[BatchStore, FakeTable]:
    """A store over a fake table; RocksDB gets every flush at once unless ``options`` say
    otherwise (``write_local_every``, ``unwritten_at_most``)."""
    table = FakeTable(tmp_path)
    return BatchStore(fake_app(table, log), "members", **options), table


def test_one_changelog_record_per_changed_key_and_state_keys_last(tmp_path):
    log = FakeLog()
    store, table = make_store(tmp_path, log)
    store.use_partition(2)
    store[b"m1"] = b"state-1"
    store[b"m1\0ledger\0n"] = b"head-1"
    store[b"m1"] = b"state-2"               # written twice in the batch: sent once
    store[b"m2"] = b"other"
    store.pop(b"m2")                        # deleted: a tombstone
    assert store.get(b"m1") == b"state-2" and store.get(b"m2") is None

    asyncio.run(store.flush())

    assert log.records == [("app-members-changelog", b"m1\0ledger\0n", b"head-1", 2),
                           ("app-members-changelog", b"m1", b"state-2", 2),
                           ("app-members-changelog", b"m2", None, 2)]
    db = table.db(2)
    assert db[b"m1"] == b"state-2" and db.get(b"m2") is None
    assert db[OFFSET_KEY] == b"2"           # the changelog offset faust's recovery resumes at


def test_a_head_put_last_follows_every_key_written_before_it(tmp_path):
    """A scenario's history head counts the pages and ids written in the batch: its changelog
    record must come after theirs, even though the head was first written before them."""
    log = FakeLog()
    store, table = make_store(tmp_path, log)
    store.use_partition(1)
    store.put_live_last(b"s\0x\0n", 1, lambda n: b"%d" % n)
    store[b"s\0x\0" + b"1"] = b"page"
    store[b"s\0x\0a" + b"e2"] = b"id"
    store.put_live_last(b"s\0x\0n", 2, lambda n: b"%d" % n)

    asyncio.run(store.flush())

    assert [key for _, key, _, _ in log.records] == [b"s\0x\0" + b"1", b"s\0x\0ae2",
                                                     b"s\0x\0n"]
    assert table.db(1)[b"s\0x\0n"] == b"2"


def test_rocksdb_is_written_only_once_the_changelog_has_the_records(tmp_path):
    async def scenario():
        log = FakeLog(hold=True)
        store, table = make_store(tmp_path, log)
        store.use_partition(0)
        store[b"m1"] = b"v1"
        flushing = asyncio.ensure_future(store.flush())
        await asyncio.sleep(0.01)
        assert table.db(0).get(b"m1") is None       # not durable yet: RocksDB untouched
        assert store.get(b"m1") == b"v1"            # but readable while in flight
        store[b"m1"] = b"v2"                        # a write during the flush waits for the next
        log.release()
        await flushing
        assert table.db(0)[b"m1"] == b"v1" and store.get(b"m1") == b"v2"
        log.hold = False
        await store.flush()
        assert table.db(0)[b"m1"] == b"v2"
    asyncio.run(scenario())


def test_batches_of_several_partitions_share_one_flush(tmp_path):
    log = FakeLog(hold=True)
    store, table = make_store(tmp_path, log)

    async def scenario():
        async with handling(store) as use:
            use(1)
            store[b"m1"] = b"state-1"
            use(3)
            store[b"m3"] = b"state-3"
            assert store.get(b"m1") is None         # reads go to the partition in use
            asyncio.get_running_loop().call_later(0.01, log.release)

    asyncio.run(scenario())
    assert [(key, partition) for _, key, _, partition in log.records] == [(b"m1", 1),
                                                                            (b"m3", 3)]
    assert table.db(1)[b"m1"] == b"state-1" and table.db(3)[b"m3"] == b"state-3"
    assert table.db(1)[OFFSET_KEY] == b"0" and table.db(3)[OFFSET_KEY] == b"1"


def test_a_failed_batch_flushes_nothing(tmp_path):
    log = FakeLog()
    store, table = make_store(tmp_path, log)

    async def scenario():
        async with handling(store) as use:
            use(1)
            store[b"m1"] = b"state-1"
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError, match="the handler failed"):
        asyncio.run(scenario())
    assert log.records == [] and table.db(1).get(b"m1") is None


def test_outside_a_batch_a_key_is_read_from_its_owners_partition(tmp_path):
    from agents.embedded_transport import partition_for

    store, table = make_store(tmp_path, FakeLog())
    owner_partition = partition_for(b"m7", 4)
    table.db(owner_partition).put(b"m7\0ledger\0n", b"head")
    assert store.get(b"m7\0ledger\0n") == b"head"


def test_the_batch_partition_does_not_leak_into_other_tasks(tmp_path):
    from agents.embedded_transport import partition_for

    store, table = make_store(tmp_path, FakeLog())
    owner = partition_for(b"m7", 4)
    table.db(owner).put(b"m7", b"state")

    async def scenario():
        async def http_query():
            return store.get(b"m7")
        query = asyncio.ensure_future(http_query())   # a task started outside the batch
        store.use_partition((owner + 1) % 4)          # the batch of another partition
        return await query
    assert asyncio.run(scenario()) == b"state"


def test_items_merge_unflushed_writes(tmp_path):
    store, table = make_store(tmp_path, FakeLog())
    table.db(1).put(b"a", b"old")
    table.db(1).put(b"b", b"kept")
    store.use_partition(1)
    store[b"a"] = b"new"
    store[b"c"] = b"added"
    store.pop(b"b")
    assert dict(store.items()) == {b"a": b"new", b"c": b"added"}


def test_a_live_object_is_encoded_once_at_the_flush(tmp_path):
    encoded = []

    def encode(value: dict) -> bytes:
        encoded.append(value)
        return repr(sorted(value.items())).encode()

    log = FakeLog()
    store, table = make_store(tmp_path, log)
    store.use_partition(3)
    state = {"balance": 10}
    store.put_live(b"m1", state, encode)
    assert store.get_live(b"m1", decode=lambda raw: None) is state
    state["balance"] = 25                    # a later event of the batch
    store.put_live(b"m1", state, encode)
    assert encoded == []

    asyncio.run(store.flush())

    assert encoded == [state] and table.db(3)[b"m1"] == b"[('balance', 25)]"
    assert log.records == [("app-members-changelog", b"m1", b"[('balance', 25)]", 3)]


def test_a_prefix_scan_sees_stored_and_unflushed_keys_of_the_owner(tmp_path):
    from agents.embedded_transport import partition_for

    store, table = make_store(tmp_path, FakeLog())
    db = table.db(partition_for(b"brand", 4))
    db.put(b"brand\0till\0T1", b"1")
    db.put(b"brand\0till\0T2", b"2")
    db.put(b"brand\0till_hour\0x", b"9")         # another dimension: not in the scan
    store[b"brand\0till\0T3"] = b"3"
    store.pop(b"brand\0till\0T2")
    store.put_live(b"brand\0till\0T1", 10, lambda v: str(v).encode())
    assert store.scan_live(b"brand\0till\0", int) == {b"brand\0till\0T1": 10,
                                                     b"brand\0till\0T3": 3}



def test_on_the_embedded_log_a_flush_lands_in_order_with_its_last_offset(tmp_path):
    """There only the last record of a partition has a future of its own; the offset the
    WriteBatch keeps is still the partition's last changelog record."""
    embedded_transport.register()
    app = faust.App("store-test", broker=f"embedded://{tmp_path / 'log'}",
                    datadir=str(tmp_path), topic_partitions=4)
    store, table = make_store(tmp_path, app.producer)
    log = app.producer.transport.log

    async def two_batches():
        for batch in range(2):
            store.use_partition(2)
            store[b"m1\0ledger\0" + b"0\0%d" % batch] = b"entry-%d" % batch
            store[b"m1"] = b"state-%d" % batch
            store.use_partition(3)
            store[b"m9"] = b"nine-%d" % batch
            store.use_partition(None)
            await store.flush()

    asyncio.run(two_batches())
    records = log.read("app-members-changelog", 2, 0, 10)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (0, b"m1\0ledger\0" + b"0\0" + b"0", b"entry-0"), (1, b"m1", b"state-0"),
        (2, b"m1\0ledger\0" + b"0\0" + b"1", b"entry-1"), (3, b"m1", b"state-1")]
    assert [r.value for r in log.read("app-members-changelog", 3, 0, 10)] == [b"nine-0",
                                                                               b"nine-1"]
    assert table.db(2)[OFFSET_KEY] == b"3" and table.db(3)[OFFSET_KEY] == b"1"
    assert table.db(2)[b"m1"] == b"state-1"
    log.close()


def test_flushed_values_wait_in_memory_and_reach_rocksdb_together(tmp_path):
    """The changelog gets every flush; RocksDB gets the flushed values later, all at once,
    with the changelog offset they reach. Meanwhile reads see them, and an object put live is
    read back as that object, not decoded again."""
    def never_decoded(raw: bytes):
        raise AssertionError("a waiting object was decoded again")

    log = FakeLog()
    store, table = make_store(tmp_path, log, write_local_every=60.0)
    table.db(2).put(b"m2", b"old")
    state = {"balance": 10}

    async def two_flushes_then_the_local_write():
        store.use_partition(2)
        store.put_live(b"m1", state, lambda value: repr(value).encode())
        store[b"m1\0ledger\0" + b"0\0" + b"0"] = b"entry"
        await store.flush()
        store.use_partition(2)
        store.pop(b"m2")
        await store.flush()
        store.use_partition(2)  # reads as the next batch of partition 2 makes them
        assert [key for _, key, _, _ in log.records] == [b"m1\0ledger\0" + b"0\0" + b"0",
                                                         b"m1", b"m2"]
        db = table.db(2)
        assert db.get(b"m1") is None and db[b"m2"] == b"old" and db.get(OFFSET_KEY) is None
        assert store.get_live(b"m1", never_decoded) is state
        assert store.get(b"m1") == b"{'balance': 10}" and store.get(b"m2") is None
        assert dict(store.items()) == {b"m1": b"{'balance': 10}",
                                       b"m1\0ledger\0" + b"0\0" + b"0": b"entry"}
        assert store.scan_live(b"m1\0ledger\0", bytes) == {b"m1\0ledger\0" + b"0\0" + b"0":
                                                           b"entry"}
        await store.write_local()
        assert db[b"m1"] == b"{'balance': 10}" and db.get(b"m2") is None
        assert db[OFFSET_KEY] == b"2"
        assert store.get_live(b"m1", lambda raw: ("decoded", raw)) == ("decoded",
                                                                       b"{'balance': 10}")

    asyncio.run(two_flushes_then_the_local_write())


def test_rocksdb_gets_the_waiting_values_once_enough_keys_wait(tmp_path):
    log = FakeLog()
    store, table = make_store(tmp_path, log, write_local_every=60.0, unwritten_at_most=3)

    async def flushes():
        for member in (b"m1", b"m2"):
            store.use_partition(1)
            store[member] = b"state"
            await store.flush()
        assert table.db(1).get(b"m1") is None
        store.use_partition(1)
        store[b"m3"] = b"state"
        await store.flush()

    asyncio.run(flushes())
    db = table.db(1)
    assert [db.get(member) for member in (b"m1", b"m2", b"m3")] == [b"state"] * 3
    assert db[OFFSET_KEY] == b"2"


def test_rocksdb_gets_the_waiting_values_when_they_are_due(tmp_path):
    log = FakeLog()
    store, table = make_store(tmp_path, log, write_local_every=0.05)

    async def flushes():
        store.use_partition(0)
        store[b"m1"] = b"first"
        await store.flush()
        assert table.db(0).get(b"m1") is None
        await asyncio.sleep(0.06)
        store.use_partition(0)
        store[b"m2"] = b"second"
        await store.flush()

    asyncio.run(flushes())
    assert table.db(0)[b"m1"] == b"first" and table.db(0)[b"m2"] == b"second"


def test_a_flush_writes_one_partition_of_waiting_values_the_one_waiting_longest(tmp_path):
    """Every partition's values written in one turn held the event loop up to 24 ms once a
    second: they are written a partition per flush, the longest waiting first."""
    log = FakeLog()
    store, table = make_store(tmp_path, log, write_local_every=0.05)

    def written() -> list[int]:
        return [partition for partition in range(4) if table.db(partition).get(b"m") is not None]

    async def flushes():
        for partition in (2, 0):
            store.use_partition(partition)
            store[b"m"] = b"state"
            await store.flush()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        store.use_partition(1)
        store[b"m"] = b"state"
        await store.flush()
        assert written() == [2]
        store.use_partition(3)
        store[b"m"] = b"state"
        await store.flush()
        assert written() == [0, 2]
        assert store.get(b"m") == b"state"  # partition 3 waits, and is read from memory
        assert table.db(2)[OFFSET_KEY] == b"0" and table.db(0)[OFFSET_KEY] == b"1"
        await store.write_local()
        assert written() == [0, 1, 2, 3]

    asyncio.run(flushes())


def test_a_rebalance_or_a_shutdown_writes_what_waits(tmp_path):
    """faust closes a given-up partition's database and reads the offset it reached; the
    waiting values must be in it by then (and at a clean stop, so no recovery replays them)."""
    from agents.batching import revoke_hooks_of

    table = FakeTable(tmp_path)
    app = fake_app(table, FakeLog())
    store = BatchStore(app, "members", write_local_every=60.0)

    async def flush_then(hook):
        store.use_partition(3)
        store[b"m3"] = b"state"
        await store.flush()
        assert table.db(3).get(b"m3") is None
        await hook()
        assert table.db(3)[b"m3"] == b"state"
        table.db(3).delete(b"m3")

    asyncio.run(flush_then(revoke_hooks_of(app)[0]))
    asyncio.run(flush_then(lambda: app.on_before_shutdown.receivers[0](app)))
