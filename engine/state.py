"""A member's loyalty state: one plain record per member, serialised with orjson.

Rolling aggregates are kept as day buckets (``YYYY-MM-DD`` -> amount) pruned beyond 366 days,
so a state stays small however long the member's history. The recent event ids kept for
idempotency are bounded too (:data:`SEEN_IDS`): an event is a no-op when its id is among the
member's last 512 applied events — far more than a crash or rebalance can replay (the events
of a few seconds since the last commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

import orjson

SEEN_IDS = 512
DAY = 86400.0


def day_key(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d")


def day_start(key: str) -> float:
    return datetime.strptime(key, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()


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
    streak_period: str | None = None
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
    spend_days: dict = field(default_factory=dict)
    earned_days: dict = field(default_factory=dict)
    visit_days: dict = field(default_factory=dict)
    transactions: dict = field(default_factory=dict)  # tx -> [time, amount, points, returned, reversed, pending]
    orders: dict = field(default_factory=dict)        # order -> [reward, points, kind]
    codes: list = field(default_factory=list)         # [pool, code, time]
    web: dict = field(default_factory=dict)           # web action -> count
    last_activity: float | None = None
    seen: list = field(default_factory=list)
    due: list = field(default_factory=list)           # [time, kind], sorted

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> "MemberState":
        return cls(**orjson.loads(raw))

    def clone(self) -> "MemberState":
        """A copy whose containers can be changed without touching this one (items inside
        them are replaced, never mutated)."""
        copy = MemberState.__new__(MemberState)
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if type(value) is dict:
                value = dict(value)
            elif type(value) is list:
                value = list(value)
            setattr(copy, name, value)
        return copy

    @property
    def pending_points(self) -> int:
        return sum(entry[1] for entry in self.pending)

    def window_sum(self, buckets: dict, at: float, days: int) -> float:
        since = day_key(at - (days - 1) * DAY)
        until = day_key(at)
        return sum(v for k, v in buckets.items() if since <= k <= until)

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


class Facts:
    """The member fields that segment rules read (engine/rules.py), computed on demand at
    the time of the event being applied."""

    __slots__ = ("state", "at", "_cache")

    def __init__(self, state: MemberState, at: float) -> None:
        self.state = state
        self.at = at
        self._cache: dict[str, Any] = {}

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._cache:
            return self._cache[name]
        value = self._compute(name)
        self._cache[name] = value
        return default if value is None else value

    def _compute(self, name: str) -> Any:
        s = self.state
        if name.startswith("tags."):
            return list(s.tags.get(name[5:], ()))
        if name.startswith("profile."):
            return s.profile.get(name[8:])
        if name.startswith("consents."):
            return s.consents.get(name[9:], "undetermined")
        simple = {"balance": s.balance, "tier": s.tier, "brand": s.brand, "status": s.status,
                  "spend_total": s.spend_total, "purchases_total": s.purchases_total,
                  "streak": s.streak_current, "pending": None,
                  "points_earned_total": s.points_earned_total}
        if name in simple and name != "pending":
            return simple[name]
        if name == "pending":
            return s.pending_points
        if name == "spend_30d":
            return s.window_sum(s.spend_days, self.at, 30)
        if name == "spend_365d":
            return s.window_sum(s.spend_days, self.at, 365)
        if name == "points_earned_365d":
            return s.window_sum(s.earned_days, self.at, 365)
        if name == "visits_30d":
            return s.window_sum(s.visit_days, self.at, 30)
        if name == "days_since_activity":
            if s.last_activity is None:
                return None
            return int(max(0.0, self.at - s.last_activity) // DAY)
        return None
