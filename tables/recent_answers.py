"""A window of the most recent answers of one owner (a reward, a promo-code pool, a goal), one
stored key per answer.

Replays after a crash are recognised by id: a reward order, a pool request, a donation. Kept
as a dict inside the owner's value, that window (thousands of ids) was decoded, re-encoded
and sent to the changelog whole at every batch that touched the owner — half a megabyte per
batch for a busy promo-code pool. Here an answer costs a few small keys:

``<owner>\\0<name>\\0a<id>`` -> ``[sequence number, answer]``
``<owner>\\0<name>\\0s<slot>`` -> the id that holds the slot (``sequence % capacity``), so the
answer ``capacity`` places older is deleted when its slot is taken again.

The owner keeps the next sequence number in its own value (:attr:`next`, stored by the caller
with the value the answers belong to), and an answer counts only if its number is below it.
In Kafka mode a crash can leave a prefix of a flush in the changelog; the owner's own key is
sent after the answers' keys (tables/batch_store.py), so a prefix holding answers without it
leaves them uncounted, and the replayed request is answered again from the value as it was:
the same answer.
"""

from __future__ import annotations

from typing import Any, Iterator, MutableMapping

import orjson


class RecentAnswers(MutableMapping):
    """The answers of ``owner`` in ``store`` (a :class:`tables.batch_store.BatchStore`),
    ``next`` being the sequence number its stored value carries. Iteration and length are not
    offered: the window is looked up by id, never listed."""

    def __init__(self, store, owner: str | bytes, name: str, capacity: int, next: int) -> None:
        owner_bytes = owner if isinstance(owner, bytes) else owner.encode()
        self._store = store
        self._prefix = b"%s\0%s\0" % (owner_bytes, name.encode())
        self.capacity = capacity
        self.next = next

    def _answer_key(self, key: bytes) -> bytes:
        return self._prefix + b"a" + key

    def _slot_key(self, slot: int) -> bytes:
        return self._prefix + b"s%d" % slot

    def _entry(self, key: str) -> list | None:
        """``[sequence, answer]`` if ``key`` is answered within the window."""
        entry = self._store.get_live(self._answer_key(key.encode()), orjson.loads)
        if entry is None or not self.next - self.capacity <= entry[0] < self.next:
            return None
        return entry

    def __getitem__(self, key: str) -> Any:
        entry = self._entry(key)
        if entry is None:
            raise KeyError(key)
        return entry[1]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._entry(key) is not None

    def __setitem__(self, key: str, answer: Any) -> None:
        entry = self._entry(key)
        key_bytes = key.encode()
        if entry is not None:  # a new answer to a request already answered (a release)
            self._store.put_live(self._answer_key(key_bytes), [entry[0], answer], orjson.dumps)
            return
        sequence = self.next
        self.next += 1
        slot_key = self._slot_key(sequence % self.capacity)
        evicted = self._store.get(slot_key)
        if evicted is not None and evicted != key_bytes:
            old_key = self._answer_key(evicted)
            old = self._store.get_live(old_key, orjson.loads)
            if old is not None and old[0] == sequence - self.capacity:
                self._store[old_key] = None
        self._store[slot_key] = key_bytes
        self._store.put_live(self._answer_key(key_bytes), [sequence, answer], orjson.dumps)

    def __delitem__(self, key: str) -> None:
        raise TypeError("answers leave the window by age only")

    def __iter__(self) -> Iterator[str]:
        raise TypeError("the window is looked up by id, never listed")

    def __len__(self) -> int:
        raise TypeError("the window is looked up by id, never listed")
