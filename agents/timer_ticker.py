"""Fires due time-based triggers: once a second, the timers due on this worker's partitions
become ``timer`` events on the member's key.

The tick never writes tables itself (faust table writes belong inside a stream event); it sends
an event, and the member agent applies it like any other input — in order with the member's
other events, deduped by id, so a timer fired twice (a crash between the send and the heap pop,
a rebalance) has one effect.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import faust
import orjson

from agents.clock import Clock
from tables.timers import TimerIndex

TICK_SECONDS = 1.0


def timer_event(member: str, due: float, kind: str) -> dict:
    """The input event a due timer becomes; its id makes a repeated firing a no-op."""
    return {"id": f"timer:{member}:{kind}:{due:.3f}", "type": "timer", "member": member,
            "time": datetime.fromtimestamp(due, timezone.utc).isoformat(),
            "data": {"kind": kind}}


async def fire_due(app: faust.App, timers: TimerIndex, events_topic: faust.TopicT,
                   clock: Clock) -> int:
    """Send an event for every timer due now on this worker's partitions; how many fired."""
    if not app.tables.recovery.completed.is_set() or app.rebalancing:
        return 0
    timers.ensure_built(app.consumer_generation_id)
    fired = timers.pop_due(clock.now())
    deliveries = [await events_topic.send(key=member.encode(),
                                          value=orjson.dumps(timer_event(member, due, kind)))
                  for due, member, kind in fired]
    if deliveries:
        await asyncio.gather(*deliveries)
    return len(fired)


def register(app: faust.App, timers: TimerIndex, events_topic: faust.TopicT,
             clock: Clock) -> None:
    @app.timer(interval=TICK_SECONDS, name="fire-due-timers")
    async def tick() -> None:
        await fire_due(app, timers, events_topic, clock)
