"""A small driver for engine tests: a program, members, and events applied in order."""

from __future__ import annotations

from engine.apply import apply
from engine.effects import Execution, LedgerEntry, Message, Rejection, SendEvent, TimersChanged
from engine.events import iso, parse_event
from engine.program import compile_program
from engine.schema import parse_time


class World:
    """Members of one program; ``send`` applies an event and routes events sent to other
    members' keys, the way the agents would."""

    def __init__(self, program: dict | None = None, **objects: dict) -> None:
        documents = {kind: dict(docs) for kind, docs in objects.items()}
        documents["program"] = {"default": program or {}}
        self.program = compile_program(documents)
        self.states: dict = {}
        self.effects: dict[str, list] = {}
        self.outbox: list[SendEvent] = []
        self.seq = 0

    def send(self, member: str, type_: str, time: str = "2026-03-05T10:00:00Z",
             event_id: str | None = None, route: bool = True, **data) -> list:
        self.seq += 1
        document = {"id": event_id or f"e{self.seq}", "type": type_, "member": member,
                    "time": time, "data": data}
        return self.apply_document(document, route)

    def apply_document(self, document: dict, route: bool = True) -> list:
        event = parse_event(document, parse_time(document["time"]))
        result = apply(self.states.get(event.member), event, self.program, event.time)
        if result.state is not None:
            self.states[event.member] = result.state
        self.effects.setdefault(event.member, []).extend(result.effects)
        for effect in result.effects:
            if isinstance(effect, SendEvent):
                self.outbox.append(effect)
                if route and effect.topic == "events":
                    self.apply_document(effect.event)
        return result.effects

    def join(self, member: str, time: str = "2026-03-01T09:00:00Z", **data) -> list:
        data.setdefault("profile", {})
        return self.send(member, "member.joined", time=time, event_id=f"join-{member}", **data)

    def state(self, member: str):
        return self.states[member]

    def ledger(self, member: str) -> list[tuple[str, int]]:
        return [(e.kind, e.points) for e in self.effects.get(member, [])
                if isinstance(e, LedgerEntry)]

    def messages(self, member: str) -> list[Message]:
        return [e for e in self.effects.get(member, []) if isinstance(e, Message)]

    def executions(self, member: str) -> list[Execution]:
        return [e for e in self.effects.get(member, []) if isinstance(e, Execution)]

    def rejections(self, member: str) -> list[Rejection]:
        return [e for e in self.effects.get(member, []) if isinstance(e, Rejection)]

    def due(self, member: str) -> list:
        changes = [e for e in self.effects.get(member, []) if isinstance(e, TimersChanged)]
        return list(changes[-1].due) if changes else []

    def fire_timers(self, member: str, until: str) -> None:
        """Apply a timer event for each due time up to ``until`` (as the timer index does)."""
        limit = parse_time(until)
        while True:
            due = [d for d in self.state(member).due if d[0] <= limit]
            if not due:
                return
            when, kind = due[0]
            before = list(self.state(member).due)
            self.apply_document({"id": f"timer:{member}:{kind}:{when}", "type": "timer",
                                 "member": member, "time": iso(when), "data": {"kind": kind}})
            assert self.state(member).due != before, f"timer {kind} at {when} did not move"
