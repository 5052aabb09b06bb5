"""Append-only lists per owner (a member's ledger, messages and executions; a scenario's
history), one key per append inside a table (a :class:`tables.batch_store.BatchStore`), so an
append writes only its new items, however long the list has grown.

Items arrive already encoded as JSON (the member agent has encoded them for their topics),
never holding a raw newline. Keys: ``<owner>\\0<list>\\0<page>\\0<slot>`` -> the items of one
append from item number ``page × page_size + slot`` on, one per line (a run; an append that
crosses a page boundary writes one run per page), so the items of a page are read with one
prefix scan; ``<owner>\\0<list>\\0n`` -> ``{"n": count, "from": {source partition: [offset,
index]}}``, only for lists fed by many writers. An event's two or three ledger entries, or a
fetch's executions of one scenario, are one record in the changelog rather than one each.

Lists written before this layout keep a page's items as one value, their JSON one per line,
under ``<owner>\\0<list>\\0<page>``. Those pages are read as they are, and new items go to
item keys, also on a page that already holds some: no migration. (Whole pages made every
append re-read and rewrite up to 100 items; at 1,700 events/s they were 80 % of the bytes the
member and history changelogs carried.)

Two ways to append, both safe against replays after a crash: ``append_at`` writes at the
position the caller knows the list has (a member's state records its lists' lengths, see
tables/members.py, so such a list keeps no count of its own), overwriting leftovers of a write
cut short; ``append_from`` skips items whose source position it has passed, for a list fed by
many writers (a scenario's history, fed by every member partition), as the analytics agent
does. The head is written behind the items it counts (``put_live_last``), so a prefix of a
flush left in the changelog by a crash never counts items it lacks. Items past a list's count
are leftovers of such a prefix and are never read. A leftover run can also start inside a
run written after it (the replayed appends need not be cut as before): appends are contiguous
from the known length on, so a run starting before the end of the run read before it is such a
leftover, and is skipped. Writes happen while handling a batch of the owner's partition, so
items live on the owner's partition and queries routed by owner find them.
"""

from __future__ import annotations

import orjson


class PagedLists:
    def __init__(self, table, name: str, page_size: int = 100) -> None:
        self.table = table
        self.name = name.encode()
        self.page_size = page_size

    def _key(self, owner: str, suffix: bytes) -> bytes:
        return b"%s\0%s\0%s" % (owner.encode(), self.name, suffix)

    def _head(self, owner: str) -> dict:
        head = self.table.get_live(self._key(owner, b"n"), orjson.loads)
        if head is None:
            return {"n": 0, "from": {}}
        if "from" not in head:  # the old layout remembered batch ids (``batches``)
            return {"n": head["n"], "from": {}}
        return head

    def _items(self, owner: str, page_no: int, keep: int) -> list[bytes]:
        """The page's first ``keep`` items: an item key wins over the same item in a page of
        the old layout (more items are leftovers of an append cut short)."""
        if keep == 0:
            return []
        page_key = self._key(owner, b"%d" % page_no)
        old_page = self.table.get(page_key)
        items = old_page.split(b"\n", keep)[:keep] if old_page else []
        prefix = page_key + b"\0"
        runs = sorted((int(key[len(prefix):]), run)
                      for key, run in self.table.scan_live(prefix, bytes).items())
        slots: dict[int, bytes] = {}
        reached = 0
        for first, run in runs:
            if first < reached:
                continue  # a leftover inside the run before it (see the module docstring)
            lines = run.split(b"\n")
            for index, item in enumerate(lines, first):
                slots[index] = item
            reached = first + len(lines)
        for slot in range(len(items)):
            if slot in slots:
                items[slot] = slots[slot]
        for slot in range(len(items), keep):
            items.append(slots[slot])
        return items

    def count(self, owner: str) -> int:
        """Items of a list fed by ``append_from`` (``append_at`` callers know their own)."""
        return self._head(owner)["n"]

    def append_at(self, owner: str, items: list[bytes], count: int) -> int:
        """Write encoded items from position ``count`` on (what the caller knows the list
        holds; anything stored past it is a leftover and is overwritten); returns the new
        length."""
        if not items:
            return count
        return self._write(owner, count, items)

    def append_from(self, owner: str, items: list[tuple[int | str, int, int, bytes]]) -> int:
        """Append encoded items, each with its source position (source partition, offset,
        index within that offset), skipping those at or before the last position appended
        from their source partition; returns how many were appended. Each source sends in
        position order (a partition of the member agent), so a replay after a crash, which
        sends the same positions again, adds nothing twice."""
        head = self._head(owner)
        reached = head["from"]
        fresh: list[bytes] = []
        for partition, offset, index, item in items:
            source = str(partition)
            last = reached.get(source)
            if last is None or [offset, index] > last:
                reached[source] = [offset, index]
                fresh.append(item)
        if not fresh:
            return 0
        count = self._write(owner, head["n"], fresh)
        self.table.put_live_last(self._key(owner, b"n"), {"n": count, "from": reached},
                                 orjson.dumps)
        return len(fresh)

    def _write(self, owner: str, count: int, items: list[bytes]) -> int:
        """One run per page the items reach, from position ``count`` on."""
        size = self.page_size
        written = 0
        while written < len(items):
            page_no, slot = divmod(count, size)
            run = items[written:written + size - slot]
            self.table[self._key(owner, b"%d\0%d" % (page_no, slot))] = b"\n".join(run)
            written += len(run)
            count += len(run)
        return count

    def newest_first(self, owner: str, offset: int = 0, limit: int = 50,
                     total: int | None = None) -> tuple[list[dict], int]:
        """A page of items, newest first, and the total count (``total``: the length the
        caller knows, for lists written with ``append_at``)."""
        if total is None:
            total = self.count(owner)
        end = total - offset  # exclusive index of the newest item wanted
        start = max(0, end - limit)
        items: list[dict] = []
        if end <= 0:
            return items, total
        for page_no in range((end - 1) // self.page_size, start // self.page_size - 1, -1):
            base = page_no * self.page_size
            page = self._items(owner, page_no, min(self.page_size, total - base))
            for index in range(len(page) - 1, -1, -1):
                if start <= base + index < end:
                    items.append(orjson.loads(page[index]))
        return items, total
