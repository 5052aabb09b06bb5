"""The worker's clock. Everything time-based reads it, so tests can move time forward."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock time plus an offset that only a test-enabled admin endpoint changes."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()
