"""Member state access: the one interface between the member agent / API and how member
states are stored. Today a faust Table on RocksDB with its changelog; the performance work may
swap the storage underneath without anything above this module noticing.

A member's state and its lists (ledger, messages, executions) share one table, hence one
changelog partition: the log keeps their writes in order, so after a crash the recovered
table never holds a member state whose ledger entries are missing. The agent writes the lists
first and the state last; lists append idempotently, so replaying the event the state had not
recorded yet adds nothing twice.
"""

from __future__ import annotations

from typing import Iterator

import faust

from agents.topics import CHANGELOG_CONFIGS
from engine.state import MemberState
from tables.paged_lists import PagedLists


class MemberStore:
    def __init__(self, app: faust.App) -> None:
        # key_type=bytes: the key serializer is raw, so the changelog key and the routing hash
        # are the member id's utf-8 bytes, as on the events topic.
        self.table = app.Table("members", key_type=bytes, value_type=bytes, default=None,
                               extra_topic_configs=CHANGELOG_CONFIGS)
        self.ledger = PagedLists(self.table, "ledger")
        self.messages = PagedLists(self.table, "messages")
        self.executions = PagedLists(self.table, "executions")

    def get(self, member: str) -> MemberState | None:
        raw = self.table.get(member.encode())
        return None if raw is None else MemberState.from_bytes(raw)

    def put(self, member: str, state: MemberState) -> None:
        """Store a member's state; inside the member's stream event, after its lists."""
        self.table[member.encode()] = state.to_bytes()

    def members(self) -> Iterator[tuple[str, MemberState]]:
        """Every member of this worker's active partitions (fan-out of on-demand triggers)."""
        for key, raw in self.table.items():
            if b"\0" not in key:
                yield key.decode(), MemberState.from_bytes(raw)

    def set_message_status(self, member: str, message: str, status: str) -> None:
        """Record a delivery outcome reported by the outbox worker (idempotent)."""
        self.table[b"%s\0status\0%s" % (member.encode(), message.encode())] = status.encode()

    def message_status(self, member: str, message: str) -> str | None:
        raw = self.table.get(b"%s\0status\0%s" % (member.encode(), message.encode()))
        return None if raw is None else raw.decode()

    def keys_per_partition(self) -> dict[int, int]:
        """Keys stored per local partition (members and their list pages): RocksDB's own
        estimate, so a scrape never scans the table."""
        dbs = getattr(self.table.data, "_dbs", {})
        return {partition: db.property_int_value("rocksdb.estimate-num-keys") or 0
                for partition, db in list(dbs.items())}
