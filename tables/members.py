"""Member state access: the one interface between the member agent / API and how member
states are stored. A faust table on RocksDB with its changelog, written through a
:class:`tables.batch_store.BatchStore` (one changelog record per changed key and one RocksDB
WriteBatch per handled batch); nothing above this module sees how.

A member's state and its lists (ledger, messages, executions) share one table, hence one
changelog partition: the log keeps their writes in order, and a flush sends a member's list
pages before its state, so a recovered table never holds a state whose list entries are
missing. The state also records how long its lists are (:class:`Stored`): a flush cut short
can leave list entries of events the recovered state has not applied; those events are
applied again and their entries overwrite the leftovers, so nothing is listed twice.
"""

from __future__ import annotations

import struct
from typing import Iterator, NamedTuple

import faust

from engine.state import MemberState
from tables.batch_store import BatchStore
from tables.paged_lists import PagedLists


#: Seconds a flushed member state may wait in memory before the local RocksDB gets it
#: (tables/batch_store.py): a busy member's state is then written once a second, not at every
#: small batch, and read back without being decoded.
WRITE_LOCAL_EVERY = 1.0

#: A member record: the list lengths its state accounts for, then the state's own bytes.
_COUNTS = struct.Struct(">III")


class Stored(NamedTuple):
    """A member's state with the lengths of its ledger, messages and executions lists as of
    that state: the lists' authority. Entries past these lengths are the remains of a flush
    cut short (lists are sent before states, and a Kafka producer can die in between) and are
    overwritten when the events are applied again."""

    state: MemberState
    counts: tuple[int, int, int]


def encode_stored(stored: Stored) -> bytes:
    return _COUNTS.pack(*stored.counts) + stored.state.to_bytes()


def decode_stored(raw: bytes) -> Stored:
    return Stored(MemberState.from_bytes(raw[_COUNTS.size:]), _COUNTS.unpack_from(raw))


class MemberStore:
    def __init__(self, app: faust.App) -> None:
        self.store = BatchStore(app, "members", write_local_every=WRITE_LOCAL_EVERY)
        #: the faust table underneath (routing of queries to the worker owning a key)
        self.table = self.store.table
        self.ledger = PagedLists(self.store, "ledger")
        self.messages = PagedLists(self.store, "messages")
        self.executions = PagedLists(self.store, "executions")

    def get(self, member: str) -> MemberState | None:
        stored = self.get_stored(member)
        return None if stored is None else stored.state

    def get_stored(self, member: str) -> Stored | None:
        return self.store.get_live(member.encode(), decode_stored)

    def record(self, member: str, before: Stored | None, state: MemberState | None,
               ledger: list[bytes], messages: list[bytes], executions: list[bytes]) -> None:
        """Append an event's list entries (encoded JSON) where ``before`` says the lists end,
        then store the new state with the new lengths; inside the member's batch."""
        counts = (0, 0, 0) if before is None else before.counts
        new_counts = (self.ledger.append_at(member, ledger, counts[0]),
                      self.messages.append_at(member, messages, counts[1]),
                      self.executions.append_at(member, executions, counts[2]))
        if state is not None:
            self.store.put_live(member.encode(), Stored(state, new_counts), encode_stored)

    def newest_first(self, lists: PagedLists, member: str, offset: int,
                     limit: int) -> tuple[list[dict], int] | None:
        """A page of one of the member's lists (``self.ledger``, ``.messages``,
        ``.executions``), newest first, with its length; None for an unknown member."""
        stored = self.get_stored(member)
        if stored is None:
            return None
        total = stored.counts[(self.ledger, self.messages, self.executions).index(lists)]
        return lists.newest_first(member, offset, limit, total=total)

    def members(self) -> Iterator[tuple[str, MemberState]]:
        """Every member of this worker's active partitions (fan-out of on-demand triggers)."""
        for key, raw in self.store.items():
            if b"\0" not in key:
                yield key.decode(), decode_stored(raw).state

    def set_message_status(self, member: str, message: str, status: str) -> None:
        """Record a delivery outcome reported by the outbox worker (idempotent)."""
        self.store[b"%s\0status\0%s" % (member.encode(), message.encode())] = status.encode()

    def message_status(self, member: str, message: str) -> str | None:
        raw = self.store.get(b"%s\0status\0%s" % (member.encode(), message.encode()))
        return None if raw is None else raw.decode()

    def keys_per_partition(self) -> dict[int, int]:
        """Keys stored per local partition (members and their list pages): RocksDB's own
        estimate, so a scrape never scans the table."""
        dbs = getattr(self.table.data, "_dbs", {})
        return {partition: db.property_int_value("rocksdb.estimate-num-keys") or 0
                for partition, db in list(dbs.items())}
