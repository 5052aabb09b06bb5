"""Python's cyclic garbage collector, kept off a stream worker's long-lived heap.

Measured (``bench``, embedded loyalty worker, 2026-12-01): with Python's defaults the worker
ran about 215 full collections in a two-minute run, 20–160 ms each, nearly all of them freeing
nothing. A batch's objects (records, cached states, futures) outlive two young collections and
reach the old generation; with the default thresholds a full collection is due every 70,000
allocations or so, and it walks the old generation and every long-lived object again.

So:

- once the worker is ready (tables recovered, not rebalancing) the heap as it stands —
  modules, faust's, aiohttp's and the program's objects — is collected once and frozen
  (:func:`gc.freeze`): full collections no longer walk it, while reference counting still frees
  what it drops. Frozen again after each rebalance;
- a full collection runs every :data:`FULL_EVERY` collections of the middle generation instead
  of every 10. Young collections are unchanged: they still find the cycles of short-lived
  objects.

Together, the loyalty worker's CPU per event fell by about a sixth (``bench/RESULTS.md``).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import faust

logger = logging.getLogger(__name__)

#: Middle-generation collections between two full ones (Python's default is 10).
FULL_EVERY = 100


def register(app: faust.App, check_every: float = 1.0) -> None:
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
    frozen_at: list[Any] = []

    @app.timer(interval=check_every)
    async def freeze_long_lived_heap() -> None:
        freeze_when_ready(app, frozen_at)


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
