"""Member state access: the one interface between the member agent / API and how member
states are stored. A faust table on RocksDB with its changelog, written through a
:class:`tables.batch_store.BatchStore` (one changelog record per changed key and one RocksDB
WriteBatch per handled batch); nothing above this module sees how.

A member's state and its lists (ledger, messages, executions) share one table, hence one
changelog partition: the log keeps their writes in order, so after a crash the recovered
table never holds a member state whose ledger entries are missing. The agent writes the lists
first and the state last, and flushes once per batch; lists append idempotently, so replaying the event the state had not
recorded yet adds nothing twice.
"""

from __future__ import annotations

from typing import Iterator

import faust

from engine.state import MemberState
from tables.batch_store import BatchStore
from tables.paged_lists import PagedLists


class MemberStore:
    def __init__(self, app: faust.App) -> None:
        self.store = BatchStore(app, "members")
        #: the faust table underneath (routing of queries to the worker owning a key)
        self.table = self.store.table
        self.ledger = PagedLists(self.store, "ledger")
        self.messages = PagedLists(self.store, "messages")
        self.executions = PagedLists(self.store, "executions")

    def get(self, member: str) -> MemberState | None:
        return self.store.get_live(member.encode(), MemberState.from_bytes)

    def put(self, member: str, state: MemberState) -> None:
        """Store a member's state; inside the member's batch, after its lists."""
        self.store.put_live(member.encode(), state, MemberState.to_bytes)

    def members(self) -> Iterator[tuple[str, MemberState]]:
        """Every member of this worker's active partitions (fan-out of on-demand triggers)."""
        for key, raw in self.store.items():
            if b"\0" not in key:
                yield key.decode(), MemberState.from_bytes(raw)

    def set_message_status(self, member: str, message: str, status: str) -> None:
        """Record a delivery outcome reported by the outbox worker (idempotent)."""
        self.store[b"%s\0status\0%s" % (member.encode(), message.encode())] = status.encode()

    def message_status(self, member: str, message: str) -> str | None:
        raw = self.store.get(b"%s\0status\0%s" % (member.encode(), message.encode()))
        return None if raw is None else raw.decode()

    async def flush(self) -> None:
        await self.store.flush()

    def keys_per_partition(self) -> dict[int, int]:
        """Keys stored per local partition (members and their list pages): RocksDB's own
        estimate, so a scrape never scans the table."""
        dbs = getattr(self.table.data, "_dbs", {})
        return {partition: db.property_int_value("rocksdb.estimate-num-keys") or 0
                for partition, db in list(dbs.items())}
