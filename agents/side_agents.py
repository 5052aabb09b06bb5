"""Side agents keyed by their own ids: reward stock (``<app>-rewards``, key reward id),
promo-code pools (``<app>-pools``, key pool id) and collective goals (``<app>-goals``, key goal
id).

Each keeps one state per key in its own table (a BatchStore, flushed once per fetched batch:
they take the batch path of agents/batching.py) and applies the engine's pure side logic
(engine/side.py); replies go back to members' keys on ``<app>-events``. As in the member agent,
replies are sent and awaited before the new state is stored, and every reply's id derives from
the request's id, so a replay after a crash repeats identical replies that the member side
dedupes — stock and codes are never handed out twice.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import faust
import orjson

from agents.batching import batch_agent
from agents.dlq import DeadLetters
from agents.metrics import PROMO_POOL_DRY
from agents.outgoing import Outgoing
from engine import effects as fx
from engine import side
from tables.batch_store import BatchStore, handling
from tables.config import ConfigReplica
from tables.recent_answers import RecentAnswers

logger = logging.getLogger(__name__)

SIDE_LOGIC: dict[str, Callable] = {
    "rewards": side.apply_reward,
    "pools": side.apply_pool,
    "goals": side.apply_goal,
}

#: Where states written before the answers moved out of them (tables/recent_answers.py) kept
#: their answers, and the key each answer has now.
LEGACY_ANSWERS: dict[str, tuple[str, Callable[[str, Any], list[tuple[str, Any]]]]] = {
    "rewards": ("orders", lambda order, answer: [(order, answer)]),
    "pools": ("issued", lambda request, code: [(f"request:{request}", code),
                                                (f"code:{code}", request)]),
    "goals": ("donations", lambda donation, points: [(donation, points)]),
}
#: Answers the side logic keeps per request: a pool keeps the request's code and the code's
#: request (engine/side.py ``apply_pool``), so its window holds twice as many answers for the
#: same ``REMEMBERED_REQUESTS`` requests.
ANSWERS_PER_REQUEST = {"rewards": 1, "pools": 2, "goals": 1}
#: The field of a side state holding its answers' next sequence number.
ANSWERS_NEXT = "answers_next"


def answers_of(store: BatchStore, name: str, key: bytes, state: dict | None) -> RecentAnswers:
    """The state's window of answers; a state of the old layout moves its answers into it."""
    answers = RecentAnswers(store, key, "answers",
                            side.REMEMBERED_REQUESTS * ANSWERS_PER_REQUEST[name],
                            (state or {}).get(ANSWERS_NEXT, 0))
    field, entries = LEGACY_ANSWERS[name]
    if state is not None and field in state:
        for request, answer in state.pop(field).items():
            for answer_key, value in entries(request, answer):
                answers[answer_key] = value
    return answers


def register(app: faust.App, topics, config: ConfigReplica) -> None:
    dead_letters = DeadLetters(app)
    for name, logic in SIDE_LOGIC.items():
        _register_one(app, name, topics.side[name], topics.events, logic, config, dead_letters)


def _register_one(app: faust.App, name: str, topic: faust.TopicT, events_topic: faust.TopicT,
                  logic: Callable, config: ConfigReplica, dead_letters: DeadLetters) -> None:
    store = BatchStore(app, f"{name}-state")
    names = {"events": events_topic.get_topic_name(), name: topic.get_topic_name()}

    async def process(message, program, out: Outgoing) -> None:
        try:
            request = orjson.loads(message.value)
        except orjson.JSONDecodeError as exc:
            await dead_letters.refuse(out, "malformed_json", message,
                                      [{"field": "", "problem": str(exc)}])
            return
        state = store.get_live(message.key, orjson.loads)
        answers = answers_of(store, name, message.key, state)
        state, effects = logic(state, request, program, answers)
        for effect in effects:
            if isinstance(effect, fx.SendEvent) and effect.event["type"] == "promo.refused":
                PROMO_POOL_DRY.labels(pool=effect.event["data"]["pool"]).inc()
                logger.warning("promo-code pool %s ran dry", effect.event["data"]["pool"])
            if isinstance(effect, fx.SendEvent):
                target = names["events"] if effect.topic == "events" else names[name]
                await out.send(target, effect.key.encode(), orjson.dumps(effect.event))
            elif isinstance(effect, fx.Rejection):
                await dead_letters.refuse(out, effect.reason, message, effect.details)
        if state is not None:
            state[ANSWERS_NEXT] = answers.next
            store.put_live(message.key, state, orjson.dumps)

    async def process_batches(batches: list) -> None:
        """Replies are durable before the states that sent them (see the module docstring)."""
        await config.caught_up.wait()
        program = config.program()
        out = Outgoing(app.producer)
        async with handling(store) as use:
            for tp, messages in batches:
                use(tp.partition)
                for message in messages:
                    await process(message, program, out)
            await out.wait()

    batch_agent(app, topic, f"{name}-agent", process_batches, grouped=True)
