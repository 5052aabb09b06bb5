"""The part of a BatchStore that paged lists and answer windows use, over a dict of raw values
(a value of None is a deletion, as in a BatchStore's batch)."""

from __future__ import annotations


class MemoryStore(dict):
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
