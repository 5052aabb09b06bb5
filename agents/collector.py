"""Python's cyclic garbage collector, run between batches and kept off a stream worker's
long-lived heap.

Measured (``bench``, embedded loyalty worker, 2026-12-01): a fetched batch's objects (records,
cached member states, the effects waiting for their flush) live until the batch is flushed,
across thousands of allocations. Python's automatic collections, due every 700 of them, kept
walking those objects and promoting them to the old generation, where full collections walked
them again (80,000–230,000 objects, 50–180 ms a pass): about a tenth of the worker's CPU,
though they found almost nothing to free. So, while the worker runs:

- automatic collection is off, and the worker runs the collection CPython would have run at
  the points where the fewest objects are alive: after each fetched batch is handled
  (agents/batching.py), when its objects have been freed by reference counting, and every
  :data:`CHECK_EVERY` seconds for a worker that only serves HTTP. What the batch left behind is
  collected as before; what it freed is never walked (:func:`collect_if_due`);
- a full collection runs every :data:`FULL_EVERY` middle-generation collections instead of
  every 10;
- once the worker is ready (tables recovered, not rebalancing) the heap as it stands —
  modules, faust's, aiohttp's and the program's objects — is collected once and frozen
  (:func:`gc.freeze`): full collections no longer walk it, while reference counting still frees
  what it drops. Frozen again after each rebalance.

Automatic collection comes back when the worker stops.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import faust

logger = logging.getLogger(__name__)

#: Tracked objects allocated and still alive since the last collection before one is due
#: (CPython's default).
YOUNG_EVERY = 700
#: Young collections between two of the middle generation (CPython's default).
MIDDLE_EVERY = 10
#: Middle-generation collections between two full ones (CPython's default is 10).
FULL_EVERY = 100
#: Seconds between two checks when no batch ends.
CHECK_EVERY = 1.0


def collect_if_due() -> int | None:
    """Run the collection due by CPython's rule (at most one, of the oldest generation due);
    returns its generation, None if none was due. ``gc.get_count()[0]`` is the tracked objects
    allocated minus those freed since the last collection, so after a batch whose objects are
    gone it is small and nothing runs."""
    young, middle, full = gc.get_count()
    if young <= YOUNG_EVERY:
        return None
    generation = 2 if full > FULL_EVERY else 1 if middle > MIDDLE_EVERY else 0
    gc.collect(generation)
    return generation


def register(app: faust.App, check_every: float = CHECK_EVERY) -> None:
    frozen_at: list[Any] = []

    @app.task
    async def collect_between_batches() -> None:
        gc.disable()
        try:
            while not app.should_stop:
                await asyncio.sleep(check_every)
                collect_if_due()
                freeze_when_ready(app, frozen_at)
        finally:
            gc.enable()


def freeze_when_ready(app: Any, frozen_at: list[Any]) -> bool:
    """Collect and freeze the heap once per consumer generation, when the worker is ready;
    True if it did now. ``frozen_at`` holds the generation it last did it for."""
    generation = app.consumer_generation_id
    if frozen_at and frozen_at[0] == generation:
        return False
    if not app.tables.recovery.completed.is_set() or app.rebalancing:
        return False
    gc.collect()
    gc.freeze()
    frozen_at[:] = [generation]
    logger.info("collector: %d long-lived objects frozen", gc.get_freeze_count())
    return True
