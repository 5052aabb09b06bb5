"""The worker's long-lived heap is frozen out of the cyclic collector once it is ready, and
again after each rebalance, never while recovering."""

from __future__ import annotations

import asyncio
import gc
from types import SimpleNamespace

import pytest

from agents.collector import freeze_when_ready


@pytest.fixture
def app():
    recovered = asyncio.Event()
    yield SimpleNamespace(consumer_generation_id=1, rebalancing=False,
                          tables=SimpleNamespace(recovery=SimpleNamespace(completed=recovered)))
    gc.unfreeze()


def test_the_heap_is_frozen_once_ready_and_again_after_a_rebalance(app):
    frozen_at: list = []
    gc.unfreeze()
    assert not freeze_when_ready(app, frozen_at)          # still recovering
    assert gc.get_freeze_count() == 0
    app.tables.recovery.completed.set()
    app.rebalancing = True
    assert not freeze_when_ready(app, frozen_at)          # in a rebalance
    app.rebalancing = False
    assert freeze_when_ready(app, frozen_at)
    frozen = gc.get_freeze_count()
    assert frozen > 1000                                  # this process's modules at least
    assert not freeze_when_ready(app, frozen_at)          # same generation: done already
    app.consumer_generation_id = 2
    long_lived = [[n] for n in range(5000)]
    assert freeze_when_ready(app, frozen_at)
    assert gc.get_freeze_count() >= frozen + len(long_lived)
