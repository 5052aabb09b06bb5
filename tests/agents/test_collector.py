"""The cyclic collector runs between batches: nothing to walk after a batch whose objects are
gone, CPython's escalation otherwise. The worker's long-lived heap is frozen out of it once
the worker is ready, and again after each rebalance, never while recovering."""

from __future__ import annotations

import asyncio
import gc
import weakref
from types import SimpleNamespace

import pytest

from agents.collector import (MIDDLE_EVERY, YOUNG_EVERY, collect_if_due, freeze_when_ready,
                              register)


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


@pytest.fixture
def manual_collection():
    gc.disable()
    gc.collect()
    yield
    gc.enable()


def test_nothing_is_collected_after_a_batch_whose_objects_are_gone(manual_collection):
    batch = [[n] for n in range(50_000)]  # far past CPython's 700
    del batch
    assert collect_if_due() is None


def test_what_a_batch_leaves_alive_is_collected_young_and_escalates_like_cpython(
        manual_collection):
    kept = []
    generations = []
    for _ in range(MIDDLE_EVERY + 2):
        kept.append([[n] for n in range(YOUNG_EVERY + 1)])
        generations.append(collect_if_due())
        assert gc.get_count()[0] == 0
    # ten young collections, then the middle generation's (CPython: count > threshold)
    assert generations == [0] * (MIDDLE_EVERY + 1) + [1]


def test_a_cycle_left_by_a_batch_is_freed_at_the_next_check(manual_collection):
    class Node:
        pass

    collected = []
    node = Node()
    node.self = node
    weakref.finalize(node, collected.append, True)
    filler = [[n] for n in range(YOUNG_EVERY)]
    del node
    assert collect_if_due() == 0 and collected == [True]
    del filler


async def test_automatic_collection_is_off_while_the_worker_runs_and_back_after():
    tasks = []
    app = SimpleNamespace(should_stop=False, task=tasks.append, consumer_generation_id=1,
                          rebalancing=False,
                          tables=SimpleNamespace(recovery=SimpleNamespace(
                              completed=asyncio.Event())))
    register(app, check_every=0.01)
    running = asyncio.ensure_future(tasks[0]())
    await asyncio.sleep(0.05)
    assert not gc.isenabled()
    app.should_stop = True
    await running
    assert gc.isenabled()
