"""The working context of one ``apply``: the member state being changed, the event, the
program, and the effects collected so far, with the helpers every rule needs (writing a
ledger entry, numbering effect ids, sending an event to another key)."""

from __future__ import annotations

import math

from engine.effects import LedgerEntry, Rejection, SendEvent
from engine.events import Event, iso
from engine.program import Program, Settings
from engine.state import BALANCE, DAY, POINTS_EARNED_TOTAL, MemberState, bucket_add


def round_points(value: float, rounding: str) -> int:
    """Points are integers: ``floor`` (the default), ``round`` (half away from zero) or
    ``ceil``. A tiny epsilon absorbs float noise (0.1 * 3 * 10 is 3.0000000000000004)."""
    if rounding == "ceil":
        return int(math.ceil(value - 1e-9))
    if rounding == "round":
        return int(math.floor(abs(value) + 0.5 + 1e-9)) * (1 if value >= 0 else -1)
    return int(math.floor(value + 1e-9))


class Context:
    """One apply's working set. ``at`` is the time rules reason with: the event's own time
    (so a replay decides the same); ``now`` only stamps what has no time of its own."""

    __slots__ = ("state", "base", "event", "program", "settings", "now", "at", "day", "effects",
                 "dirty",
                 "timers_dirty", "rejected", "ledger_seq", "message_seq", "execution_seq",
                 "send_seq", "purchase_bonus")

    def __init__(self, state: MemberState, base: MemberState, event: Event, program: Program,
                 settings: Settings, now: float) -> None:
        self.state = state
        self.base = base                      # the input: its containers are copied on write
        self.event = event
        self.program = program
        self.settings = settings
        self.now = now
        self.at = event.time
        self.day = int(event.time // DAY)     # the UTC day of ``at`` (buckets, expiry lots)
        self.effects: list = []
        self.dirty = 0                        # facts changed since the last settle round (bits)
        self.timers_dirty = False             # the member's due times must be recomputed
        self.rejected = False
        self.ledger_seq = 0
        self.message_seq = 0
        self.execution_seq = 0
        self.send_seq = 0
        self.purchase_bonus = 0               # multiplier bonus on the event's purchase

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
        self.ledger_seq += 1
        entry = tuple.__new__(LedgerEntry, (
            f"{self.event.id}:L{self.ledger_seq}", state.id, self.at, kind, points,
            state.balance, source or self.event.id, scenario))
        self.effects.append(entry)
        self.dirty |= BALANCE
        return entry

    def earned(self, points: int) -> None:
        """Count points earned (for tiers on points and referral conditions)."""
        if points <= 0:
            return
        state = self.state
        state.points_earned_total += points
        days = state.earned_days
        if days is self.base.earned_days:
            days = state.earned_days = days.copy()
        bucket_add(days, self.day, points)
        self.dirty |= POINTS_EARNED_TOTAL

    def send(self, topic: str, key: str, type_: str, data: dict, suffix: str | None = None,
             member: str | None = None) -> None:
        event_id = f"{self.event.id}:{suffix}" if suffix else self.next_id("S")
        self.effects.append(SendEvent(topic=topic, key=key, event={
            "id": event_id, "type": type_, "member": member or key, "time": iso(self.at),
            "brand": self.state.brand, "data": data}))

    def reject(self, reason: str, details: list[dict]) -> None:
        self.rejected = True
        self.effects.append(Rejection(reason=reason, details=details))
