"""The per-partition timer index: which member is due for a time-based trigger, and when.

Durable part: a table ``member-timers`` (member -> JSON list of ``[due, kind]``), written by the
member agent whenever the engine reports new due times, so it lives on the member's partition
and survives restart and rebalance through its changelog.

Fast part: an in-memory heap ordered by due time, rebuilt from the durable part after every
rebalance (one pass over the partition's timers, not over its members). A tick pops only what
is due, so it never scans all members. Entries are checked against the durable list when they
pop, so a replaced or cancelled timer simply does not fire.
"""

from __future__ import annotations

import heapq
from typing import Iterable

import faust
import orjson

from tables.batch_store import BatchStore


class TimerIndex:
    def __init__(self, app: faust.App) -> None:
        self.store = BatchStore(app, "member-timers")
        self._heap: list[tuple[float, str, str]] = []
        self._built_for_generation: int | None = None

    def set_due(self, member: str, due: Iterable[tuple[float, str]]) -> None:
        """Replace a member's due times; inside the member's batch."""
        entries = sorted({(float(t), str(kind)) for t, kind in due})
        key = member.encode()
        if entries:
            self.store[key] = orjson.dumps(entries)
            for t, kind in entries:
                heapq.heappush(self._heap, (t, member, kind))
        elif self.store.get(key) is not None:
            self.store.pop(key, None)

    def due_for(self, member: str) -> list[tuple[float, str]]:
        raw = self.store.get(member.encode())
        return [] if raw is None else [(t, kind) for t, kind in orjson.loads(raw)]

    def rebuild(self) -> int:
        """Load the heap from the timers of this worker's active partitions."""
        self._heap = [(t, key.decode(), kind)
                      for key, raw in self.store.items()
                      for t, kind in orjson.loads(raw)]
        heapq.heapify(self._heap)
        return len(self._heap)

    def ensure_built(self, generation: int) -> None:
        if self._built_for_generation != generation:
            self.rebuild()
            self._built_for_generation = generation

    def pop_due(self, now: float, limit: int = 10_000) -> list[tuple[float, str, str]]:
        """Timers due at ``now`` that are still current, earliest first (at most ``limit``)."""
        fired: list[tuple[float, str, str]] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(fired) < limit:
            t, member, kind = heapq.heappop(heap)
            if (t, kind) in self.due_for(member):
                fired.append((t, member, kind))
        return fired
