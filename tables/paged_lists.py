"""Append-only lists per owner (a member's ledger, messages and executions; a scenario's
history), stored in fixed-size pages inside a table (a :class:`tables.batch_store.BatchStore`),
so an append costs one page write however long the list has grown.

A page is its items' JSON, one per line (orjson never writes a raw newline): an append adds
bytes to the page without decoding it, and items arrive already encoded (the member agent has
encoded them for their topics). Keys: ``<owner>\\0<list>\\0<page number>`` -> the page;
``<owner>\\0<list>\\0n`` -> ``{"n": count, "seen": next sequence number}``, only for lists
fed by many writers, whose batch ids are kept as a window of :class:`RecentAnswers`.

Two ways to append, both safe against replays after a crash: ``append_at`` writes at the
position the caller knows the list has (a member's state records its lists' lengths, see
tables/members.py, so such a list keeps no count of its own), overwriting leftovers of a write
cut short; ``append_batches`` skips batch ids it has seen, for a list fed by many writers (a
scenario's history), remembering the last ``remember`` ids, the window in which a replay can
repeat one. The head is written behind the pages and ids it counts (``put_live_last``), so a
prefix of a flush left in the changelog by a crash never counts items it lacks. Writes happen while handling a batch of the owner's partition, so pages live on
the owner's partition and queries routed by owner find them.
"""

from __future__ import annotations

import orjson

from tables.recent_answers import RecentAnswers


class PagedLists:
    def __init__(self, table, name: str, page_size: int = 100, remember: int = 1) -> None:
        self.table = table
        self.name = name.encode()
        self.page_size = page_size
        self.remember = remember

    def _key(self, owner: str, suffix: bytes) -> bytes:
        return b"%s\0%s\0%s" % (owner.encode(), self.name, suffix)

    def _head(self, owner: str) -> dict:
        head = self.table.get_live(self._key(owner, b"n"), orjson.loads)
        return {"n": 0, "seen": 0} if head is None else head

    def _seen(self, owner: str, head: dict) -> RecentAnswers:
        """The window of batch ids appended; a head of the old layout (``batches``: a list of
        ids) moves its ids into it."""
        seen = RecentAnswers(self.table, owner, self.name.decode() + "-batches",
                             self.remember, head.get("seen", 0))
        for batch in head.pop("batches", ()):
            seen[batch] = head["n"]
        return seen

    def _page(self, owner: str, page_no: int, keep: int) -> bytes:
        """The page's first ``keep`` items (more are leftovers of an append cut short)."""
        if keep == 0:
            return b""
        page = self.table.get(self._key(owner, b"%d" % page_no)) or b""
        if page.count(b"\n") >= keep:
            page = b"\n".join(page.split(b"\n", keep)[:keep])
        return page

    def count(self, owner: str) -> int:
        """Items of a list fed by ``append_batches`` (``append_at`` callers know their own)."""
        return self._head(owner)["n"]

    def append_at(self, owner: str, items: list[bytes], count: int) -> int:
        """Write encoded items from position ``count`` on (what the caller knows the list
        holds; anything stored past it is a leftover and is overwritten); returns the new
        length."""
        if not items:
            return count
        return self._write(owner, count, items)

    def append_batches(self, owner: str, batches: list[tuple[str, list[bytes]]]) -> None:
        """Append several batches of encoded items (oldest first) in one page write, skipping
        the batches already appended (a list fed by many writers gets many in one fetched
        batch)."""
        head = self._head(owner)
        migrated = "batches" in head
        seen = self._seen(owner, head)
        fresh: dict[str, list[bytes]] = {}
        for batch, items in batches:
            if items and batch not in fresh and batch not in seen:
                fresh[batch] = items
        if not fresh and not migrated:
            return
        count = self._write(owner, head["n"], [item for items in fresh.values() for item in items])
        for batch in fresh:
            seen[batch] = count
        self.table.put_live_last(self._key(owner, b"n"), {"n": count, "seen": seen.next},
                                 orjson.dumps)

    def _write(self, owner: str, count: int, items: list[bytes]) -> int:
        size = self.page_size
        page_no, held = divmod(count, size)
        page = self._page(owner, page_no, held)
        for item in items:
            page = page + b"\n" + item if held else item
            held += 1
            count += 1
            if held == size:
                self.table[self._key(owner, b"%d" % page_no)] = page
                page_no += 1
                page, held = b"", 0
        if held:
            self.table[self._key(owner, b"%d" % page_no)] = page
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
            page = self._page(owner, page_no, min(self.page_size, total - base)).split(b"\n")
            for index in range(len(page) - 1, -1, -1):
                if start <= base + index < end:
                    items.append(orjson.loads(page[index]))
        return items, total
