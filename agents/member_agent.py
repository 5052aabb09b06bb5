"""The member agent: applies the engine to every event of ``<app>-events`` and executes the
effects it returns.

Per event: decode and validate (a bad record goes to the DLQ with its reason, and the agent
carries on), read the member's state, ``engine.apply``, send the effects (ledger, outbox,
executions, events to other members' keys and to the side agents, DLQ refusals) and wait for
them to be durable, then store the new state, its pages (ledger, messages, executions) and due
times. Effects are durable before the state that records them, and carry ids derived from the
event, so a crash in between replays the event and repeats identical effects (receivers dedupe
by id) — never loses them; the engine's event-id dedupe makes the replay of a stored event a
no-op.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from agents.analytics import analytics_topic
from agents.clock import Clock
from agents.dlq import DeadLetters
from agents.metrics import ACTIONS, CHAIN_CUTS, EVENT_TO_EFFECT, EVENTS, SCENARIO_EXECUTIONS
from agents.topics import EVENT_RETENTION_SECONDS, events_topic
from engine import effects as fx
from engine.analytics import analytics_deltas
from engine.apply import apply
from engine.events import EventError, parse_event
from tables.config import ConfigReplica
from tables.members import MemberStore
from tables.timers import TimerIndex

logger = logging.getLogger(__name__)

#: Larger events are refused (DLQ reason ``too_large``): no till sends a 256 KiB purchase.
MAX_EVENT_BYTES = 256 * 1024


@dataclass
class MemberTopics:
    events: faust.TopicT
    ledger: faust.TopicT
    outbox: faust.TopicT
    executions: faust.TopicT
    analytics: faust.TopicT
    side: dict[str, faust.TopicT]


@dataclass
class MemberTables:
    members: MemberStore
    timers: TimerIndex


def _log_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(f"{app.conf.id}-{name}", key_serializer="raw", value_serializer="raw",
                     retention=EVENT_RETENTION_SECONDS, deleting=True)


def declare_topics(app: faust.App) -> MemberTopics:
    return MemberTopics(
        events=events_topic(app), ledger=_log_topic(app, "ledger"),
        outbox=_log_topic(app, "outbox"), executions=_log_topic(app, "executions"),
        analytics=analytics_topic(app),
        side={name: _log_topic(app, name) for name in ("rewards", "pools", "goals")})


class MemberProcessor:
    """Everything the agent does for one event, separate from faust's stream loop."""

    def __init__(self, topics: MemberTopics, tables: MemberTables, config: ConfigReplica,
                 dead_letters: DeadLetters, clock: Clock) -> None:
        self.topics = topics
        self.tables = tables
        self.config = config
        self.dead_letters = dead_letters
        self.clock = clock

    async def process(self, message: Any) -> None:
        raw = message.value
        if raw is None or len(raw) > MAX_EVENT_BYTES:
            reason = "empty" if raw is None else "too_large"
            EVENTS.labels(type="unknown", outcome="rejected").inc()
            await (await self.dead_letters.send(reason, message))
            return
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            EVENTS.labels(type="unknown", outcome="rejected").inc()
            await (await self.dead_letters.send("malformed_json", message,
                                                [{"field": "", "problem": str(exc)}]))
            return
        now = self.clock.now()
        try:
            event = parse_event(document, now)
        except EventError as exc:
            EVENTS.labels(type="unknown", outcome="rejected").inc()
            await (await self.dead_letters.send("invalid_event", message, exc.details))
            return
        key = (message.key or b"").decode(errors="replace")
        if event.member != key:
            EVENTS.labels(type=event.type, outcome="rejected").inc()
            await (await self.dead_letters.send(
                "key_mismatch", message,
                [{"field": "member", "problem": f"record key {key!r} is not the member id"}]))
            return
        if event.type == "message.status":
            self.tables.members.set_message_status(event.member, event.data["message"],
                                                   event.data["status"])
            EVENTS.labels(type=event.type, outcome="applied").inc()
            return
        await self.apply(event, message, now)

    async def apply(self, event, message: Any, now: float) -> None:
        tables = self.tables
        state = tables.members.get(event.member)
        result = apply(state, event, self.config.program(), now)
        deliveries = []
        ledger_items, message_items, execution_items = [], [], []
        due = None
        rejected = False
        for effect in result.effects:
            kind = type(effect)
            if kind is fx.LedgerEntry:
                item = effect.to_dict()
                ledger_items.append(item)
                deliveries.append(await self.topics.ledger.send(
                    key=event.member.encode(), value=orjson.dumps(item)))
            elif kind is fx.Message or kind is fx.Webhook:
                item = effect.to_dict()
                message_items.append(item)
                deliveries.append(await self.topics.outbox.send(
                    key=event.member.encode(), value=orjson.dumps(item)))
            elif kind is fx.Execution:
                item = effect.to_dict()
                execution_items.append(item)
                SCENARIO_EXECUTIONS.labels(scenario=effect.scenario).inc()
                for action in effect.actions:
                    ACTIONS.labels(type=action).inc()
                deliveries.append(await self.topics.executions.send(
                    key=effect.scenario.encode(), value=orjson.dumps(item)))
            elif kind is fx.SendEvent:
                topic = self.topics.events if effect.topic == "events" else \
                    self.topics.side[effect.topic]
                deliveries.append(await topic.send(key=effect.key.encode(),
                                                   value=orjson.dumps(effect.event)))
            elif kind is fx.Rejection:
                rejected = True
                deliveries.append(await self.dead_letters.send(
                    effect.reason, message, effect.details))
            elif kind is fx.TimersChanged:
                due = effect.due
            elif kind is fx.ChainCut:
                CHAIN_CUTS.inc()
                logger.warning("scenario chain cut at depth %d after scenario %s",
                               effect.depth, effect.scenario)
                execution_items.append({"id": f"{effect.event}:cut:{effect.scenario}",
                                        "scenario": effect.scenario, "member": event.member,
                                        "event": effect.event, "cut": True,
                                        "depth": effect.depth, "actions": []})
        after = result.state
        deltas = analytics_deltas(
            None if state is None else state.to_view(), None if after is None else after.to_view(),
            event.type, event.time, event.data,
            [effect for effect in result.effects if type(effect) is fx.LedgerEntry])
        if deltas:
            brand = (after or state).brand
            deliveries.append(await self.topics.analytics.send(
                key=brand.encode(), value=orjson.dumps(
                    {"source": [message.partition, message.offset], "deltas": deltas})))
        if deliveries:
            await asyncio.gather(*deliveries)
        store = tables.members
        store.ledger.append(event.member, ledger_items, event.id)
        store.messages.append(event.member, message_items, event.id)
        store.executions.append(event.member, execution_items, event.id)
        if due is not None:
            tables.timers.set_due(event.member, due)
        if result.state is not None:
            store.put(event.member, result.state)
        EVENTS.labels(type=event.type, outcome="rejected" if rejected else "applied").inc()
        if message.timestamp:
            EVENT_TO_EFFECT.observe(max(0.0, self.clock.now() - self.clock.offset
                                        - message.timestamp))


def register(app: faust.App, config: ConfigReplica, clock: Clock) -> MemberProcessor:
    topics = declare_topics(app)
    tables = MemberTables(members=MemberStore(app), timers=TimerIndex(app))
    processor = MemberProcessor(topics, tables, config, DeadLetters(app), clock)

    @app.agent(topics.events, name="members")
    async def members(stream):
        await config.caught_up.wait()
        async for event in stream.events():
            await processor.process(event.message)

    return processor
