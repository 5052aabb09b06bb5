"""A member's loyalty state: one plain record per member, serialised with orjson per event.

The state is bounded whatever the member's history, because it is read and written for every
event:

- rolling aggregates are day buckets ``[day, amount]`` (``day`` = UTC day number, epoch // 86400),
  oldest first, pruned beyond :data:`HISTORY_DAYS`;
- expiry lots are merged per expiry day, so there is at most one lot per day;
- transactions kept for returns are those of the last :data:`HISTORY_DAYS` days, at most
  :data:`MAX_TRANSACTIONS` (the newest); a return of an older one is refused. Each is one
  string (:func:`transaction_record`): a dict of strings is not tracked by Python's cyclic
  collector and decodes from JSON without a list and six numbers per purchase, and only returns
  and bonuses read a record back;
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

from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any, Final

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


def pair_add(pairs: list, key: int | float, amount: int | float) -> int:
    """Add ``amount`` at ``key`` in a flat list of pairs ``[key, amount, key, amount, ...]``
    kept in key order (appending is the common case: events arrive in time order), merging
    into an equal key; returns the index of the key's pair. (``int | float``: compiled, a
    ``float`` parameter would turn a lot's integer points into floats.)"""
    end = len(pairs)
    if not end or pairs[end - 2] < key:
        pairs.append(key)
        pairs.append(amount)
        return end
    if pairs[end - 2] == key:
        pairs[end - 1] += amount
        return end - 2
    index = 0
    while pairs[index] < key:
        index += 2
    if pairs[index] == key:
        pairs[index + 1] += amount
    else:
        pairs[index:index] = [key, amount]
    return index


def bucket_add(buckets: list, day: int, amount: float) -> None:
    """Add to a flat list of day buckets ``[day, amount, day, amount, ...]``, oldest first
    (:func:`pair_add`); a new newest day drops the days older than :data:`HISTORY_DAYS`
    before it."""
    if pair_add(buckets, day, amount) != len(buckets) - 2:
        return
    horizon = day - HISTORY_DAYS
    if buckets[0] < horizon:
        start = 0
        while buckets[start] < horizon:
            start += 2
        del buckets[:start]


def window_sum(buckets: list, day: int, days: int) -> float:
    """The sum of the ``days`` day buckets ending with ``day`` (inclusive), newest first."""
    since = day - days + 1
    total = 0.0
    index = len(buckets) - 2
    while index >= 0:
        at = buckets[index]
        if at < since:
            break
        if at <= day:
            total += buckets[index + 1]
        index -= 2
    return total


def transaction_record(at: float, amount: float, points: int, returned: float,
                       reversed_points: int, pending: bool) -> str:
    """A purchase kept for returns: its time, amount, the standard points it earned (bonus
    included), the amount returned so far, the points reversed so far, and whether its points
    still wait in the returns window — as a JSON array in a string (orjson writes floats
    several times faster than ``repr``)."""
    return _dumps((at, amount, points, returned, reversed_points, pending)).decode()


def transaction_fields(record: str) -> tuple[float, float, int, float, int, bool]:
    """The fields of :func:`transaction_record`."""
    at, amount, points, returned, reversed_points, pending = _loads(record)
    return float(at), float(amount), points, float(returned), reversed_points, pending


def transaction_time(record: str) -> float:
    """The time of a :func:`transaction_record`, read without the other fields (every purchase
    checks the oldest one against the history)."""
    return float(record[1:record.index(",")])


@dataclass(init=False, slots=True)
class MemberState:
    """The dataclass gives the field order (the serialised layout), equality and repr;
    ``__init__`` is written out, with the defaults, because a generated one stays a Python
    function when the engine is compiled, and a state is built on every event."""

    id: str
    brand: str
    joined: float
    status: str
    profile: dict
    consents: dict
    cards: list
    channel: str | None
    activated: bool
    tier: str | None
    tier_manual: str | None
    tags: dict                # field -> sorted list of tags
    segments: list            # sorted segment ids
    balance: int
    pending: list             # [unlock_at, points, kind, tx, event]
    lots: list                # flat: expires_at, remaining, ...; oldest first
    streak_current: int
    streak_best: int
    streak_period: int | None  # number of the last period with a visit
    referrer: str | None
    referred: int
    qualified: int
    qualified_members: list
    qualify_sent: bool
    executions: dict          # scenario -> runs for this member
    occurrences: dict         # time trigger -> last occurrence key
    exceeded: list            # balance_exceeded triggers passed
    spend_total: float
    purchases_total: int
    points_earned_total: int
    spend_days: list          # flat day buckets (bucket_add): day, amount, ...
    earned_days: list         # day, points, ...
    visit_days: list          # day, visits, ...
    transactions: dict        # tx -> transaction_record(...)
    orders: dict              # order -> [reward, points, kind]
    codes: list               # [pool, code, time], the latest 20
    web: dict                 # web action -> count
    last_activity: float | None
    last_time: float | None
    seen: str                 # "\nid\nid\n", newest last
    due: list                 # [time, kind], sorted
    timers_for: str | None    # Program.timer_signature of ``due``
    layout: int               # 2: flat lots and day buckets, kept purchases as strings

    def __init__(self, id: str, brand: str, joined: float, status: str = "active",
                 profile: dict | None = None, consents: dict | None = None,
                 cards: list | None = None, channel: str | None = None,
                 activated: bool = False, tier: str | None = None,
                 tier_manual: str | None = None, tags: dict | None = None,
                 segments: list | None = None, balance: int = 0, pending: list | None = None,
                 lots: list | None = None, streak_current: int = 0, streak_best: int = 0,
                 streak_period: int | None = None, referrer: str | None = None,
                 referred: int = 0, qualified: int = 0, qualified_members: list | None = None,
                 qualify_sent: bool = False, executions: dict | None = None,
                 occurrences: dict | None = None, exceeded: list | None = None,
                 spend_total: float = 0.0, purchases_total: int = 0,
                 points_earned_total: int = 0, spend_days: list | None = None,
                 earned_days: list | None = None, visit_days: list | None = None,
                 transactions: dict | None = None, orders: dict | None = None,
                 codes: list | None = None, web: dict | None = None,
                 last_activity: float | None = None, last_time: float | None = None,
                 seen: str = "\n", due: list | None = None,
                 timers_for: str | None = None, layout: int = 2) -> None:
        self.id = id
        self.brand = brand
        self.joined = joined
        self.status = status
        self.profile = {} if profile is None else profile
        self.consents = {} if consents is None else consents
        self.cards = [] if cards is None else cards
        self.channel = channel
        self.activated = activated
        self.tier = tier
        self.tier_manual = tier_manual
        self.tags = {} if tags is None else tags
        self.segments = [] if segments is None else segments
        self.balance = balance
        self.pending = [] if pending is None else pending
        self.lots = [] if lots is None else lots
        self.streak_current = streak_current
        self.streak_best = streak_best
        self.streak_period = streak_period
        self.referrer = referrer
        self.referred = referred
        self.qualified = qualified
        self.qualified_members = [] if qualified_members is None else qualified_members
        self.qualify_sent = qualify_sent
        self.executions = {} if executions is None else executions
        self.occurrences = {} if occurrences is None else occurrences
        self.exceeded = [] if exceeded is None else exceeded
        self.spend_total = spend_total
        self.purchases_total = purchases_total
        self.points_earned_total = points_earned_total
        self.spend_days = [] if spend_days is None else spend_days
        self.earned_days = [] if earned_days is None else earned_days
        self.visit_days = [] if visit_days is None else visit_days
        self.transactions = {} if transactions is None else transactions
        self.orders = {} if orders is None else orders
        self.codes = [] if codes is None else codes
        self.web = {} if web is None else web
        self.last_activity = last_activity
        self.last_time = last_time
        self.seen = seen
        self.due = [] if due is None else due
        self.timers_for = timers_for
        self.layout = layout

    def to_bytes(self) -> bytes:
        """The field values as a JSON list in declaration order (positional, which is several
        times faster to read back than keywords). Fields are only ever added at the end, with
        defaults, so an older, shorter list still loads."""
        return _dumps(_values(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> "MemberState":
        values = _loads(raw)
        if len(values) < FIELD_COUNT:
            values = _upgraded(values)
        return cls(*values)

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
            self.due, self.timers_for, self.layout)

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
FIELD_COUNT: Final = len(_FIELD_NAMES)
_values = attrgetter(*_FIELD_NAMES)
_dumps = orjson.dumps
_loads = orjson.loads


def _upgraded(values: list) -> list:
    """A state written before ``layout`` (2026-12-01), in the current layout: lots and day
    buckets were lists of pairs, kept purchases lists of fields. (Fields added since then
    take their defaults.)"""
    if len(values) > _FIELD_NAMES.index("layout"):
        return values
    values = list(values)
    for name in ("lots", "spend_days", "earned_days", "visit_days"):
        index = _FIELD_NAMES.index(name)
        if index < len(values):
            values[index] = [item for pair in values[index] for item in pair]
    index = _FIELD_NAMES.index("transactions")
    if index < len(values):
        values[index] = {tx: transaction_record(*record)
                         for tx, record in values[index].items()}
    return values


#: Facts an event can change, one bit each in ``Context.dirty`` (an int: cheaper to mark, test
#: and clear per event than a set of names). Facts that change with time alone need none: their
#: segments are evaluated on every event. A profile, tag or consent field that some segment reads
#: gets a bit of its own from the program (``Program.field_bits``).
BALANCE: Final = 1
TIER: Final = 2
BRAND: Final = 4
STATUS: Final = 8
SPEND_TOTAL: Final = 16
PURCHASES_TOTAL: Final = 32
POINTS_EARNED_TOTAL: Final = 64
STREAK: Final = 128
PENDING: Final = 256
FACT_BITS: Final = {"balance": BALANCE, "tier": TIER, "brand": BRAND, "status": STATUS,
                    "spend_total": SPEND_TOTAL, "purchases_total": PURCHASES_TOTAL,
                    "points_earned_total": POINTS_EARNED_TOTAL, "streak": STREAK,
                    "pending": PENDING}
#: The first bit the program gives to profile, tag and consent fields.
FIELD_BITS_FROM: Final = 512
