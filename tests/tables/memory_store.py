"""The part of a BatchStore that paged lists and answer windows use, over a dict of raw values
(a value of None is a deletion, as in a BatchStore's batch)."""

from __future__ import annotations


class MemoryStore(dict):
    """``batched``: writes stay one batch until ``flush()``, as a BatchStore's do until the
    batch is flushed; otherwise every write is a batch of its own."""

    def __init__(self, batched: bool = False) -> None:
        super().__init__()
        self.batched = batched
        self._flushes = 0

    @property
    def flushes(self) -> int:
        """Flushes begun; unbatched, each look is a new batch (so no append extends another)."""
        if not self.batched:
            self._flushes += 1
        return self._flushes

    def flush(self) -> None:
        self._flushes += 1

    def get_live(self, key, decode):
        raw = self.get(key)
        return None if raw is None else decode(raw)

    def put_live(self, key, value, encode):
        self[key] = encode(value)

    def put_live_last(self, key, value, encode):
        self.pop(key, None)
        self[key] = encode(value)

    def scan_live(self, prefix, decode):
        return {key: decode(value) for key, value in self.items()
                if key.startswith(prefix) and value is not None}

    def live_keys(self) -> set:
        return {key for key, value in self.items() if value is not None}
