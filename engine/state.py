"""A member's loyalty state: one plain record per member, serialised with orjson per event.

The state is bounded whatever the member's history, because it is read and written for every
event:

- rolling aggregates are day buckets ``[day, amount]`` (``day`` = UTC day number, epoch // 86400),
  oldest first, pruned beyond :data:`HISTORY_DAYS`;
- expiry lots are merged per expiry day, so there is at most one lot per day;
- transactions kept for returns are those of the last :data:`HISTORY_DAYS` days, at most
  :data:`MAX_TRANSACTIONS` (the newest); a return of an older one is refused;
- idempotency: the ids of the member's most recent applied events, newline-separated in one
  string of at most :data:`SEEN_CHARS` characters (≈ 100 ids of 20 characters; never fewer
  than 10, ids being at most 200). One string is cheap to test, extend and serialise. A replay
  after a crash or a rebalance re-delivers the events since the last committed offset — a few
  seconds' worth, far fewer events of one member than that — so an id older than the window is
  not replayed. ``last_time`` (the highest event time applied) is kept alongside, to tell late
  input.

Copies are cheap because most containers are never changed in place: the engine replaces
them (``state.tags = {...}``). Only the few that change on most events — lots, pending points,
transactions, execution counters and day buckets (:data:`COPIED`) — are changed in place, copy
on write: :meth:`MemberState.clone` shares every container, and apply copies one of these the
first time it changes it, while it is still the input's (``container is ctx.base.<name>``), so
an event copies only what it changes. Items inside any container (a bucket, a lot) are
replaced, never changed. A property test checks that apply never changes its input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, Callable

import orjson

SEEN_CHARS = 2048
#: The containers that apply changes in place (after copying them on first write); every
#: other one is only ever replaced.
COPIED = ("pending", "lots", "executions", "spend_days", "earned_days", "visit_days",
          "transactions")
MAX_TRANSACTIONS = 50
HISTORY_DAYS = 366
DAY = 86400.0


def day_number(epoch: float) -> int:
    """The UTC day of an epoch time (aggregates and expiry are counted in UTC days)."""
    return int(epoch // DAY)


def bucket_add(buckets: list, day: int, amount: float) -> None:
    """Add to a day bucket (appending is the common case: events arrive in time order) and
    drop buckets older than :data:`HISTORY_DAYS` before ``day``."""
    if buckets:
        last = buckets[-1]
        if last[0] == day:
            buckets[-1] = [day, last[1] + amount]
            return
        if last[0] > day:
            for index, (at, value) in enumerate(buckets):
                if at == day:
                    buckets[index] = [day, value + amount]
                    return
                if at > day:
                    buckets.insert(index, [day, amount])
                    return
    buckets.append([day, amount])
    horizon = day - HISTORY_DAYS
    if buckets[0][0] < horizon:
        buckets[:] = [b for b in buckets if b[0] >= horizon]


def window_sum(buckets: list, day: int, days: int) -> float:
    """The sum of the ``days`` day buckets ending with ``day`` (inclusive)."""
    since = day - days + 1
    total = 0
    for at, value in reversed(buckets):
        if at < since:
            break
        if at <= day:
            total += value
    return total


@dataclass(slots=True)
class MemberState:
    id: str
    brand: str
    joined: float
    status: str = "active"
    profile: dict = field(default_factory=dict)
    consents: dict = field(default_factory=dict)
    cards: list = field(default_factory=list)
    channel: str | None = None
    activated: bool = False
    tier: str | None = None
    tier_manual: str | None = None
    tags: dict = field(default_factory=dict)          # field -> sorted list of tags
    segments: list = field(default_factory=list)      # sorted segment ids
    balance: int = 0
    pending: list = field(default_factory=list)       # [unlock_at, points, kind, tx, event]
    lots: list = field(default_factory=list)          # [expires_at, remaining], oldest first
    streak_current: int = 0
    streak_best: int = 0
    streak_period: int | None = None                  # number of the last period with a visit
    referrer: str | None = None
    referred: int = 0
    qualified: int = 0
    qualified_members: list = field(default_factory=list)
    qualify_sent: bool = False
    executions: dict = field(default_factory=dict)    # scenario -> runs for this member
    occurrences: dict = field(default_factory=dict)   # time trigger -> last occurrence key
    exceeded: list = field(default_factory=list)      # balance_exceeded triggers passed
    spend_total: float = 0.0
    purchases_total: int = 0
    points_earned_total: int = 0
    spend_days: list = field(default_factory=list)    # [day, amount]
    earned_days: list = field(default_factory=list)   # [day, points]
    visit_days: list = field(default_factory=list)    # [day, visits]
    transactions: dict = field(default_factory=dict)  # tx -> [time, amount, points, returned, reversed, pending]
    orders: dict = field(default_factory=dict)        # order -> [reward, points, kind]
    codes: list = field(default_factory=list)         # [pool, code, time], the latest 20
    web: dict = field(default_factory=dict)           # web action -> count
    last_activity: float | None = None
    last_time: float | None = None
    seen: str = "\n"                                 # "\nid\nid\n", newest last
    due: list = field(default_factory=list)           # [time, kind], sorted
    timers_for: str | None = None                     # Program.timer_signature of ``due``

    def to_bytes(self) -> bytes:
        """The field values as a JSON list in declaration order (positional, which is several
        times faster to read back than keywords). Fields are only ever added at the end, with
        defaults, so an older, shorter list still loads."""
        return _dumps(_values(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "MemberState":
        return cls(*_loads(raw))

    def clone(self) -> "MemberState":
        """A copy sharing every container with this one: apply copies a :data:`COPIED`
        container before its first change (see the module docstring) and only replaces the
        others. Written out field by field and positionally: it runs per event."""
        return MemberState(
            self.id, self.brand, self.joined, self.status, self.profile, self.consents,
            self.cards, self.channel, self.activated, self.tier, self.tier_manual, self.tags,
            self.segments, self.balance, self.pending, self.lots,
            self.streak_current, self.streak_best, self.streak_period, self.referrer,
            self.referred, self.qualified, self.qualified_members, self.qualify_sent,
            self.executions, self.occurrences, self.exceeded, self.spend_total,
            self.purchases_total, self.points_earned_total, self.spend_days,
            self.earned_days, self.visit_days, self.transactions,
            self.orders, self.codes, self.web, self.last_activity, self.last_time, self.seen,
            self.due, self.timers_for)

    @property
    def pending_points(self) -> int:
        return sum(entry[1] for entry in self.pending)

    def to_view(self) -> dict[str, Any]:
        """``GET /v1/members/{id}`` (PRODUCT.md §3), plus a few additive fields."""
        from engine.events import iso
        return {"id": self.id, "brand": self.brand, "status": self.status,
                "balance": self.balance, "pending": self.pending_points, "tier": self.tier,
                "tags": {k: list(v) for k, v in self.tags.items() if v},
                "segments": list(self.segments),
                "streak": {"current": self.streak_current, "best": self.streak_best},
                "referral": {"referrer": self.referrer, "referred": self.referred,
                             "qualified": self.qualified},
                "profile": dict(self.profile), "consents": dict(self.consents),
                "last_activity": None if self.last_activity is None else iso(self.last_activity),
                "cards": list(self.cards), "joined": iso(self.joined),
                "spend_total": round(self.spend_total, 2),
                "purchases_total": self.purchases_total,
                "points_earned_total": self.points_earned_total,
                "codes": [{"pool": p, "code": c} for p, c, _ in self.codes]}


_FIELD_NAMES = tuple(f.name for f in fields(MemberState))
_values = attrgetter(*_FIELD_NAMES)
_dumps = orjson.dumps
_loads = orjson.loads


def _rolling(buckets: str, days: int):
    return lambda s, at: window_sum(getattr(s, buckets), day_number(at), days)


#: Facts that are a state attribute as it is (segment rules read them with ``attrgetter``).
ATTRIBUTES = {"balance": "balance", "tier": "tier", "brand": "brand", "status": "status",
              "spend_total": "spend_total", "purchases_total": "purchases_total",
              "points_earned_total": "points_earned_total", "streak": "streak_current"}


def _attribute(name: str):
    get = attrgetter(name)
    return lambda s, at: get(s)


#: How each plain fact is read from a state at a time (segment rules and tier metrics).
FACTS = {
    **{fact: _attribute(name) for fact, name in ATTRIBUTES.items()},
    "pending": lambda s, at: s.pending_points,
    "spend_30d": _rolling("spend_days", 30),
    "spend_365d": _rolling("spend_days", 365),
    "points_earned_365d": _rolling("earned_days", 365),
    "visits_30d": _rolling("visit_days", 30),
    "days_since_activity": lambda s, at: (None if s.last_activity is None
                                          else int(max(0.0, at - s.last_activity) // DAY)),
}


def reader(name: str) -> Callable[[MemberState, float], Any]:
    """How a segment rule reads a field (``tags.x``, ``profile.x``, ``consents.x`` or a plain
    fact) from a state at a time."""
    plain = FACTS.get(name)
    if plain is not None:
        return plain
    prefix, _, key = name.partition(".")
    if prefix == "tags":
        return lambda s, at: s.tags.get(key, [])
    if prefix == "profile":
        return lambda s, at: s.profile.get(key)
    if prefix == "consents":
        return lambda s, at: s.consents.get(key, "undetermined")
    raise ValueError(f"unknown field {name!r}")
