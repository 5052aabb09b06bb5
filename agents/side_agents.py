"""Side agents keyed by their own ids: reward stock (``<app>-rewards``, key reward id),
promo-code pools (``<app>-pools``, key pool id) and collective goals (``<app>-goals``, key goal
id).

Each keeps one state per key in its own table and applies the engine's pure side logic
(engine/side.py); replies go back to members' keys on ``<app>-events``. As in the member agent,
replies are sent and awaited before the new state is stored, and every reply's id derives from
the request's id, so a replay after a crash repeats identical replies that the member side
dedupes — stock and codes are never handed out twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

import faust
import orjson

from agents.dlq import DeadLetters
from agents.metrics import PROMO_POOL_DRY
from agents.topics import CHANGELOG_CONFIGS
from engine import effects as fx
from engine import side
from tables.config import ConfigReplica

logger = logging.getLogger(__name__)

SIDE_LOGIC: dict[str, Callable] = {
    "rewards": side.apply_reward,
    "pools": side.apply_pool,
    "goals": side.apply_goal,
}


def register(app: faust.App, topics, config: ConfigReplica) -> None:
    dead_letters = DeadLetters(app)
    for name, logic in SIDE_LOGIC.items():
        _register_one(app, name, topics.side[name], topics.events, logic, config, dead_letters)


def _register_one(app: faust.App, name: str, topic: faust.TopicT, events_topic: faust.TopicT,
                  logic: Callable, config: ConfigReplica, dead_letters: DeadLetters) -> None:
    table = app.Table(f"{name}-state", key_type=bytes, value_type=bytes, default=None,
                      extra_topic_configs=CHANGELOG_CONFIGS)

    async def process(message) -> None:
        try:
            request = orjson.loads(message.value)
        except orjson.JSONDecodeError as exc:
            await (await dead_letters.send("malformed_json", message,
                                           [{"field": "", "problem": str(exc)}]))
            return
        raw = table.get(message.key)
        state = None if raw is None else orjson.loads(raw)
        state, effects = logic(state, request, config.program())
        deliveries = []
        for effect in effects:
            if isinstance(effect, fx.SendEvent) and effect.event["type"] == "promo.refused":
                PROMO_POOL_DRY.labels(pool=effect.event["data"]["pool"]).inc()
                logger.warning("promo-code pool %s ran dry", effect.event["data"]["pool"])
            if isinstance(effect, fx.SendEvent):
                target = events_topic if effect.topic == "events" else topic
                deliveries.append(await target.send(key=effect.key.encode(),
                                                    value=orjson.dumps(effect.event)))
            elif isinstance(effect, fx.Rejection):
                deliveries.append(await dead_letters.send(effect.reason, message,
                                                          effect.details))
        if deliveries:
            await asyncio.gather(*deliveries)
        if state is not None:
            table[message.key] = orjson.dumps(state)

    async def run(stream):
        await config.caught_up.wait()
        async for event in stream.events():
            await process(event.message)

    app.agent(topic, name=f"{name}-agent")(run)
