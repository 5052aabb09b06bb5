"""The member agent: applies the engine to every event of ``<app>-events`` and executes the
effects it returns.

The records arrive a fetched batch per partition (agents/batching.py). Per event: decode and
validate (a bad record goes to the DLQ with its reason, and the agent carries on), read the
member's state, ``engine.apply``, send the effects (ledger, outbox, executions, events to other
members' keys and to the side agents, DLQ refusals), and write the new state, its pages
(ledger, messages, executions) and due times to the batch's cache. Per batch: one analytics
record per brand, then wait until every effect is durable, then flush the states (one
changelog record per changed key, one RocksDB WriteBatch), then the offsets are acknowledged.
In embedded mode the effects and the changelog records of a batch go to the log in one atomic
write, which makes the first wait unnecessary.

Effects are durable before the states that record them, and carry ids derived from the event,
so a crash in between replays the events and repeats identical effects (receivers dedupe by
id) — never loses them; the engine's event-id dedupe makes the replay of a stored event a
no-op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
import orjson

from agents.analytics import analytics_topic
from agents.batching import batch_agent
from agents.clock import Clock
from agents.dlq import DeadLetters
from agents.metrics import (ACTIONS, CHAIN_CUTS, EVENT_TO_EFFECT, EVENTS, SCENARIO_EXECUTIONS,
                            observe_many)
from agents.outgoing import Outgoing
from agents.topics import EVENT_RETENTION_SECONDS, events_topic
from engine import effects as fx
from engine.analytics import analytics_deltas, flatten, member_view
from engine.apply import apply
from engine.events import EventError, checked_event, parse_event
from tables.batch_store import handling
from tables.config import ConfigReplica
from tables.members import MemberStore
from tables.timers import TimerIndex

logger = logging.getLogger(__name__)

#: Larger events are refused (DLQ reason ``too_large``): no till sends a 256 KiB purchase.
MAX_EVENT_BYTES = 256 * 1024
#: Events per analytics record: keeps a record far below Kafka's 1 MB default request size.
ANALYTICS_EVENTS_PER_RECORD = 200
#: At most this many executions in one ``<app>-executions`` record (≈ 200 bytes each, so
#: records stay far below a Kafka broker's 1 MB default limit).
EXECUTIONS_PER_RECORD = 500


@dataclass
class MemberTopics:
    events: faust.TopicT
    ledger: faust.TopicT
    outbox: faust.TopicT
    executions: faust.TopicT
    analytics: faust.TopicT
    side: dict[str, faust.TopicT]


@dataclass
class TopicNames:
    events: str
    ledger: str
    outbox: str
    executions: str
    analytics: str
    side: dict[str, str]


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


class ScenarioMetrics:
    """Executions per scenario and actions per type, counted in dicts while a fetch is applied
    and added to the counters once it is durable: an increment of a labelled counter (a lock
    and a value) per execution and per action cost more than the rest of the bookkeeping, and
    a fetch that fails is applied again, so counting at the end counts it once."""

    def __init__(self) -> None:
        self._scenario_counters: dict[str, Any] = {}
        self._action_counters: dict[str, Any] = {}
        self._scenarios: dict[str, int] = {}
        self._actions: dict[str, int] = {}

    def executed(self, scenario: str, actions) -> None:
        scenarios = self._scenarios
        scenarios[scenario] = scenarios.get(scenario, 0) + 1
        counts = self._actions
        for action in actions:
            counts[action] = counts.get(action, 0) + 1

    def publish(self) -> None:
        """Add the executions counted since the last call to the counters."""
        for scenario, count in self._scenarios.items():
            counter = self._scenario_counters.get(scenario)
            if counter is None:
                counter = self._scenario_counters[scenario] = SCENARIO_EXECUTIONS.labels(
                    scenario=scenario)
            counter.inc(count)
        for action, count in self._actions.items():
            counter = self._action_counters.get(action)
            if counter is None:
                counter = self._action_counters[action] = ACTIONS.labels(type=action)
            counter.inc(count)
        self.discard()

    def discard(self) -> None:
        """Forget the executions counted since the last publish (or their fetch failed)."""
        self._scenarios = {}
        self._actions = {}


class MemberProcessor:
    """Everything the agent does for a batch of events, separate from faust's consumer loop."""

    def __init__(self, app: faust.App, topics: MemberTopics, tables: MemberTables,
                 config: ConfigReplica, dead_letters: DeadLetters, clock: Clock) -> None:
        self.app = app
        self.topics = topics
        self.tables = tables
        self.config = config
        self.dead_letters = dead_letters
        self.clock = clock
        self.metrics = ScenarioMetrics()
        self.names = TopicNames(events=topics.events.get_topic_name(),
                          ledger=topics.ledger.get_topic_name(),
                          outbox=topics.outbox.get_topic_name(),
                          executions=topics.executions.get_topic_name(),
                          analytics=topics.analytics.get_topic_name(),
                          side={k: t.get_topic_name() for k, t in topics.side.items()})

    async def process_batches(self, batches: list) -> None:
        """Apply the events of each fetched partition in order; effects are durable before
        the states that record them, and both before the batches' offsets are acknowledged.
        The partitions of one fetch share one flush and one wait."""
        await self.config.caught_up.wait()
        tables = self.tables
        out = Outgoing(self.app.producer)
        outcomes: dict[tuple[str, str], int] = {}
        program = self.config.program()
        executions = BatchExecutions()
        self.metrics.discard()
        async with handling(tables.members.store, tables.timers.store) as use:
            for tp, messages in batches:
                use(tp.partition)
                batch = BatchAnalytics(tp.partition)
                for message in messages:
                    try:
                        outcome = await self.process(message, program, out, batch, executions)
                    except Exception as exc:  # one record must not stop the partition: DLQ it
                        logger.exception("event at %s:%d could not be processed",
                                         message.topic, message.offset)
                        await self.dead_letters.refuse(out, "processing_error", message, [
                            {"field": "", "problem": f"{type(exc).__name__}: {exc}"}])
                        outcome = ("unknown", "rejected")
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                for brand, record in batch.records():
                    await out.send(self.names.analytics, brand.encode(), orjson.dumps(record))
            for scenario, record in executions.records():
                await out.send(self.names.executions, scenario, record)
            if not getattr(self.app.producer, "writes_turn_atomically", False):
                await out.wait()
        # The embedded log writes the effects and the states' changelog records of this turn
        # in one atomic write, so they need no wait in between; this finds them done (or
        # raises a failed send).
        await out.wait()
        for (event_type, outcome), count in outcomes.items():
            EVENTS.labels(type=event_type, outcome=outcome).inc(count)
        self.metrics.publish()
        now = self.clock.now() - self.clock.offset
        observe_many(EVENT_TO_EFFECT, [max(0.0, now - message.timestamp)
                                       for _, messages in batches for message in messages
                                       if message.timestamp])

    async def process(self, message: Any, program, out: Outgoing, batch: "BatchAnalytics",
                      executions: "BatchExecutions") -> tuple[str, str]:
        """One event: returns its (type, outcome) for the metrics."""
        raw = message.value
        if raw is None or len(raw) > MAX_EVENT_BYTES:
            reason = "empty" if raw is None else "too_large"
            await self.dead_letters.refuse(out, reason, message)
            return ("unknown", "rejected")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            await self.dead_letters.refuse(out, "malformed_json", message,
                                           [{"field": "", "problem": str(exc)}])
            return ("unknown", "rejected")
        now = self.clock.now()
        try:
            event = checked_event(document) if message.checked else parse_event(document, now)
        except EventError as exc:
            await self.dead_letters.refuse(out, "invalid_event", message, exc.details)
            return ("unknown", "rejected")
        key = (message.key or b"").decode(errors="replace")
        if event.member != key:
            await self.dead_letters.refuse(out, "key_mismatch", message, [
                {"field": "member", "problem": f"record key {key!r} is not the member id"}])
            return (event.type, "rejected")
        if event.type == "message.status":
            self.tables.members.set_message_status(event.member, event.data["message"],
                                                   event.data["status"])
            return (event.type, "applied")
        return await self.apply(event, message, program, now, out, batch, executions)

    async def apply(self, event, message: Any, program, now: float, out: Outgoing,
                    batch: "BatchAnalytics", executions: "BatchExecutions") -> tuple[str, str]:
        tables = self.tables
        names = self.names
        stored = tables.members.get_stored(event.member)
        state = None if stored is None else stored.state
        result = apply(state, event, program, now)
        member_key = event.member.encode()
        ledger_items, message_items, execution_items = [], [], []
        due = None
        rejected = False
        for effect in result.effects:
            kind = type(effect)
            if kind is fx.LedgerEntry:
                item = orjson.dumps(effect.to_dict())
                ledger_items.append(item)
                await out.send(names.ledger, member_key, item)
            elif kind is fx.Message or kind is fx.Webhook:
                item = orjson.dumps(effect.to_dict())
                message_items.append(item)
                await out.send(names.outbox, member_key, item)
            elif kind is fx.Execution:
                item = orjson.dumps(effect.to_dict())
                execution_items.append(item)
                self.metrics.executed(effect.scenario, effect.actions)
                executions.add(effect.scenario, message.partition, message.offset,
                               len(execution_items), item)
            elif kind is fx.SendEvent:
                topic = names.events if effect.topic == "events" else names.side[effect.topic]
                await out.send(topic, effect.key.encode(), orjson.dumps(effect.event))
            elif kind is fx.Rejection:
                rejected = True
                await self.dead_letters.refuse(out, effect.reason, message, effect.details)
            elif kind is fx.TimersChanged:
                due = effect.due
            elif kind is fx.ChainCut:
                CHAIN_CUTS.inc()
                logger.warning("scenario chain cut at depth %d after scenario %s",
                               effect.depth, effect.scenario)
                execution_items.append(orjson.dumps({
                    "id": f"{effect.event}:cut:{effect.scenario}", "scenario": effect.scenario,
                    "member": event.member, "event": effect.event, "cut": True,
                    "depth": effect.depth, "actions": []}))
        after = result.state
        if result.effects or after is not state:
            deltas = analytics_deltas(
                member_view(state), member_view(after), event.type, event.time, event.data,
                [effect for effect in result.effects if type(effect) is fx.LedgerEntry])
            if deltas:
                batch.add((after or state).brand, message.offset, deltas)
        if after is not state or ledger_items or message_items or execution_items:
            tables.members.record(event.member, stored, after, ledger_items, message_items,
                                  execution_items)
        if due is not None:
            tables.timers.set_due(event.member, due)
        return (event.type, "rejected" if rejected else "applied")


def with_source(item: bytes, partition: int, offset: int, index: int) -> bytes:
    """An execution as sent to ``<app>-executions``: with ``source``, the position of the
    event that ran it (events partition, offset, index among that event's executions), by
    which the scenario history recognises one sent again after a crash."""
    return item[:-1] + b',"source":[%d,%d,%d]}' % (partition, offset, index)


class BatchExecutions:
    """The executions of a fetch's batches for ``<app>-executions``, in records of up to
    ``EXECUTIONS_PER_RECORD`` executions of one scenario rather than one record each: a promotion
    such as double points runs on every purchase, and a record per execution was written,
    fetched and decoded again by the scenario history (agents/scenario_history.py) for each.

    A record is lines: first the JSON list of its executions' sources (``[events partition,
    offset, index]``, as in :func:`with_source`), then one execution per line, in the order
    the events were applied (orjson never writes a raw newline)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[list, list[bytes]]] = {}
        self._full: list[tuple[bytes, bytes]] = []

    def add(self, scenario: str, partition: int, offset: int, index: int, item: bytes) -> None:
        """An execution, the ``index``-th of the event at ``partition``/``offset``."""
        chunk = self._open.get(scenario)
        if chunk is None:
            chunk = self._open[scenario] = ([], [])
        sources, items = chunk
        sources.append((partition, offset, index))
        items.append(with_source(item, partition, offset, index))
        if len(items) >= EXECUTIONS_PER_RECORD:
            self._full.append(_executions_record(scenario, sources, items))
            del self._open[scenario]

    def records(self) -> list[tuple[bytes, bytes]]:
        """(scenario id, record) for every record; a scenario's records in the order its
        executions ran."""
        return self._full + [_executions_record(scenario, sources, items)
                             for scenario, (sources, items) in self._open.items()]


def _executions_record(scenario: str, sources: list, items: list[bytes]) -> tuple[bytes, bytes]:
    return scenario.encode(), b"\n".join([orjson.dumps(sources), *items])


class BatchAnalytics:
    """The analytics deltas of a batch, in records of up to ``ANALYTICS_EVENTS_PER_RECORD``
    events of one brand. Each event's deltas are kept with its offset, so the analytics agent
    skips the events it already counted and a batch replayed after a crash (cut into other
    batches) counts nothing twice. A record names each ``(dimension, value, metric)`` once
    (``keys``) and an event lists ``[key index, amount, ...]``: far less JSON to write and
    parse than the deltas spelt out."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._open: dict[str, tuple[dict, list]] = {}
        self._full: list[tuple[str, dict]] = []

    def add(self, brand: str, offset: int, deltas: list) -> None:
        chunk = self._open.get(brand)
        if chunk is None:
            chunk = self._open[brand] = ({}, [])
        keys, events = chunk
        events.append([offset, flatten(deltas, keys)])
        if len(events) >= ANALYTICS_EVENTS_PER_RECORD:
            self._full.append((brand, self._record(keys, events)))
            del self._open[brand]

    def records(self) -> list[tuple[str, dict]]:
        """(brand, record) for every record of the batch."""
        return self._full + [(brand, self._record(keys, events))
                             for brand, (keys, events) in self._open.items()]

    def _record(self, keys: dict, events: list) -> dict:
        return {"partition": self.partition, "keys": list(keys), "events": events}


def register(app: faust.App, config: ConfigReplica, clock: Clock) -> MemberProcessor:
    topics = declare_topics(app)
    tables = MemberTables(members=MemberStore(app), timers=TimerIndex(app))
    processor = MemberProcessor(app, topics, tables, config, DeadLetters(app), clock)
    batch_agent(app, topics.events, "members", processor.process_batches, grouped=True,
                urgent=True)

    return processor
