"""The working context of one ``apply``: the member state being changed, the event, the
program, and the effects collected so far, with the helpers every rule needs (writing a
ledger entry, numbering effect ids, sending an event to another key)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine.effects import LedgerEntry, Rejection, SendEvent
from engine.events import Event, iso
from engine.program import Program, Settings
from engine.state import MemberState, day_key


def round_points(value: float, rounding: str) -> int:
    """Points are integers: ``floor`` (the default), ``round`` (half away from zero) or
    ``ceil``. A tiny epsilon absorbs float noise (0.1 * 3 * 10 is 3.0000000000000004)."""
    if rounding == "ceil":
        return int(math.ceil(value - 1e-9))
    if rounding == "round":
        return int(math.floor(abs(value) + 0.5 + 1e-9)) * (1 if value >= 0 else -1)
    return int(math.floor(value + 1e-9))


@dataclass(slots=True)
class Context:
    state: MemberState
    event: Event
    program: Program
    settings: Settings
    now: float
    effects: list = field(default_factory=list)
    dirty: set = field(default_factory=set)
    ledger_seq: int = 0
    message_seq: int = 0
    execution_seq: int = 0
    send_seq: int = 0

    @property
    def at(self) -> float:
        """The time rules reason with: the event's own time (replays decide the same)."""
        return self.event.time

    def next_id(self, prefix: str) -> str:
        if prefix == "L":
            self.ledger_seq += 1
            n = self.ledger_seq
        elif prefix == "M":
            self.message_seq += 1
            n = self.message_seq
        elif prefix == "X":
            self.execution_seq += 1
            n = self.execution_seq
        else:
            self.send_seq += 1
            n = self.send_seq
        return f"{self.event.id}:{prefix}{n}"

    def post(self, kind: str, points: int, scenario: str | None = None,
             source: str | None = None) -> LedgerEntry | None:
        """Change the balance and write its ledger entry (nothing for zero points)."""
        if points == 0:
            return None
        state = self.state
        state.balance += points
        entry = LedgerEntry(id=self.next_id("L"), member=state.id, time=self.at, kind=kind,
                            points=points, balance=state.balance,
                            event=source or self.event.id, scenario=scenario)
        self.effects.append(entry)
        self.dirty.add("balance")
        return entry

    def earned(self, points: int) -> None:
        """Count points earned (for tiers on points and referral conditions)."""
        if points <= 0:
            return
        state = self.state
        state.points_earned_total += points
        key = day_key(self.at)
        state.earned_days[key] = state.earned_days.get(key, 0) + points
        self.dirty.add("points_earned_total")

    def send(self, topic: str, key: str, type_: str, data: dict, suffix: str | None = None,
             member: str | None = None) -> None:
        event_id = f"{self.event.id}:{suffix}" if suffix else self.next_id("S")
        self.effects.append(SendEvent(topic=topic, key=key, event={
            "id": event_id, "type": type_, "member": member or key, "time": iso(self.at),
            "brand": self.state.brand, "data": data}))

    def reject(self, reason: str, details: list[dict]) -> None:
        self.effects.append(Rejection(reason=reason, details=details))
