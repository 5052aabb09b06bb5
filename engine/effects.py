"""Effects: what applying an event asks the outside world to do, as plain data.

The member agent executes them (agents/member_agent.py): ledger entries to ``<app>-ledger``
and the member's ledger pages, messages and webhooks to ``<app>-outbox`` and the member's
message list, executions to ``<app>-executions``, events to other keys, rejections to the DLQ.
Every id derives from the source event's id, so a replayed event repeats identical effects
that receivers recognise.

Effects are named tuples: immutable, and several times cheaper to build than frozen
dataclasses, which matters at a few effects per event. The per-event ones (ledger entries,
executions, messages) are built with ``tuple.__new__(Kind, values)``, every field given: that
skips the Python-level ``__new__`` a named tuple gets, half the cost.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from engine.events import iso

#: Ledger entry kinds (PRODUCT.md §3), plus ``refund`` (points of a reward order given back),
#: ``donate`` (points given to a collective goal) — both additive.
LEDGER_KINDS = ("earn", "spend", "bonus", "award", "deduct", "redeem", "expire", "reversal",
                "refund", "donate")


class LedgerEntry(NamedTuple):
    id: str
    member: str
    time: float
    kind: str
    points: int
    balance: int
    event: str
    scenario: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "member": self.member, "time": iso(self.time),
                "kind": self.kind, "points": self.points, "balance": self.balance,
                "event": self.event, "scenario": self.scenario}


class Message(NamedTuple):
    id: str
    member: str
    time: float
    channel: str                # email | sms | internal | push | staff_email
    subject: str | None
    body: str
    title: str | None = None
    target: str | None = None
    user: str | None = None
    scenario: str | None = None
    status: str = "queued"
    brand: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "member": self.member, "time": iso(self.time),
                "channel": self.channel, "subject": self.subject, "body": self.body,
                "title": self.title, "target": self.target, "user": self.user,
                "scenario": self.scenario, "status": self.status, "brand": self.brand}


class Webhook(NamedTuple):
    id: str
    member: str
    time: float
    url: str
    method: str
    body: Any
    scenario: str | None = None
    brand: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "member": self.member, "time": iso(self.time),
                "channel": "webhook", "url": self.url, "method": self.method,
                "body": self.body, "subject": None, "scenario": self.scenario,
                "status": "queued", "brand": self.brand}


class Execution(NamedTuple):
    id: str
    scenario: str
    member: str
    time: float
    trigger: str
    event: str
    actions: tuple[str, ...]
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.scenario, "member": self.member,
                "time": iso(self.time), "trigger": self.trigger, "event": self.event,
                "actions": list(self.actions), "depth": self.depth}


class SendEvent(NamedTuple):
    """An event for another key: ``events`` (a member), ``rewards``, ``pools`` or ``goals``."""

    topic: str
    key: str
    event: dict

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "key": self.key, "event": self.event}


class Rejection(NamedTuple):
    """The event was refused (it goes to the DLQ with this reason); nothing else changed."""

    reason: str
    details: list

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "details": list(self.details)}


class ChainCut(NamedTuple):
    """A scenario chain stopped at the program's depth limit."""

    scenario: str
    depth: int
    event: str

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "depth": self.depth, "event": self.event,
                "cut": True}


class TimersChanged(NamedTuple):
    """The member's complete set of next due times, ``(time, kind)``."""

    due: tuple[tuple[float, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"due": [{"time": iso(t), "kind": kind} for t, kind in self.due]}
