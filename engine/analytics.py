"""Analytics deltas: what one applied event changes in the per-dimension aggregates.

The member agent computes these from the member's view before and after the event and the
ledger entries it produced, and sends them to the analytics agent, which only adds numbers —
so analytics never scan members at query time.

Dimensions and metrics (PRODUCT.md §2 "Analytics"):
- ``brand``, ``tier``, ``segment``: ``members`` (current count), ``points_issued``,
  ``points_redeemed``, ``points_expired``, ``revenue``, ``purchases``;
- ``store`` and ``till``: ``revenue``, ``purchases``, ``points_issued``;
- ``till_hour``: purchases per till per hour (value ``<till>|<YYYY-MM-DDTHH>``), the till load;
- ``last_active_day``: members by the day of their latest activity (value
  ``<tier>|<YYYY-MM-DD>``). "Active members in the last N days" is the sum of the days in the
  window, exact and without timers: an event moves its member from the old day to the new one.

A member without a tier is counted under tier ``"none"``. Points issued are the positive
ledger entries other than reversals; redeemed are ``redeem`` entries (as a positive number);
expired are ``expire`` entries. Revenue is purchase amounts minus returned amounts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable

from engine.state import DAY, MemberState, day_number

NO_TIER = "none"
ISSUING_KINDS = frozenset({"earn", "bonus", "award", "unlock", "refund"})

#: (dimension, value, metric, amount). Amounts stay ``Any``: counts and points are ints and
#: must stay ints in the rows (a float annotation would make compiled code turn them into
#: floats).
Delta = tuple[str, str, str, Any]


def _day(iso: str | None) -> str | None:
    return None if not iso else iso[:10]


def _hour(epoch: float) -> str:
    return _hour_string(int(epoch // 3600))


@lru_cache(maxsize=4096)
def _hour_string(hour_number: int) -> str:
    return datetime.fromtimestamp(hour_number * 3600, timezone.utc).strftime("%Y-%m-%dT%H")


def _counted(view: dict | None) -> bool:
    return view is not None and view.get("status") == "active"


def analytics_deltas(before: dict | None, after: dict | None, event_type: str,
                     event_time: float, data: dict, ledger: Iterable) -> list[Delta]:
    """Aggregate changes of one event, from the member views around it (``to_view()``)."""
    deltas: list[Delta] = []
    now_view = after if after is not None else before
    if now_view is None:
        return deltas
    brand = now_view["brand"]
    tier = now_view.get("tier") or NO_TIER
    segments = list(now_view.get("segments") or ())

    # Membership counts move when a member appears, is deleted, or changes tier / segments.
    old_in = _counted(before)
    new_in = _counted(after)
    old_tier: str = (before.get("tier") or NO_TIER) if before is not None else NO_TIER
    old_segments = set(before.get("segments") or ()) if before is not None else set()
    new_segments = set(after.get("segments") or ()) if after else set()
    if old_in != new_in:
        deltas.append(("brand", brand, "members", 1 if new_in else -1))
    if old_in and (not new_in or old_tier != tier):
        deltas.append(("tier", old_tier, "members", -1))
    if new_in and (not old_in or old_tier != tier):
        deltas.append(("tier", tier, "members", 1))
    for segment in sorted((old_segments if old_in else set())
                          - (new_segments if new_in else set())):
        deltas.append(("segment", segment, "members", -1))
    for segment in sorted((new_segments if new_in else set())
                          - (old_segments if old_in else set())):
        deltas.append(("segment", segment, "members", 1))

    # Activity: move the member from the day of its previous activity to the new one.
    old_day = _day(before.get("last_activity")) if before is not None and old_in else None
    new_day = _day(after.get("last_activity")) if after is not None and new_in else None
    if (old_day, old_tier) != (new_day, tier if new_in else None):
        if old_day:
            deltas.append(("last_active_day", f"{old_tier}|{old_day}", "members", -1))
        if new_day:
            deltas.append(("last_active_day", f"{tier}|{new_day}", "members", 1))

    # Points, by kind of ledger entry.
    for entry in ledger:
        metric = None
        if entry.kind == "redeem":
            metric, amount = "points_redeemed", -entry.points
        elif entry.kind == "expire":
            metric, amount = "points_expired", -entry.points
        elif entry.kind in ISSUING_KINDS and entry.points > 0:
            metric, amount = "points_issued", entry.points
        if metric is not None:
            deltas.append(("brand", brand, metric, amount))
            deltas.append(("tier", tier, metric, amount))
            deltas.extend(("segment", s, metric, amount) for s in segments)
            if metric == "points_issued" and data.get("store"):
                deltas.append(("store", str(data["store"]), metric, amount))

    # Revenue and till load.
    if event_type in ("purchase", "return") and isinstance(data.get("amount"), (int, float)):
        sign = 1 if event_type == "purchase" else -1
        revenue = sign * float(data["amount"])
        purchases = 1 if event_type == "purchase" else 0
        rows = [("brand", brand), ("tier", tier), *(("segment", s) for s in segments)]
        if data.get("store"):
            rows.append(("store", str(data["store"])))
        if data.get("till"):
            rows.append(("till", str(data["till"])))
        for dimension, value in rows:
            deltas.append((dimension, value, "revenue", revenue))
            if purchases:
                deltas.append((dimension, value, "purchases", purchases))
        if purchases and data.get("till"):
            deltas.append(("till_hour", f"{data['till']}|{_hour(event_time)}", "purchases", 1))
    return deltas


def member_view(state: MemberState | None) -> dict | None:
    """The fields of a member that ``analytics_deltas`` reads, not the whole ``to_view()``
    (which formats every date and copies every container, twice per event)."""
    if state is None:
        return None
    return {"brand": state.brand, "status": state.status, "tier": state.tier,
            "segments": state.segments,
            "last_activity": None if state.last_activity is None
            else _day_string(day_number(state.last_activity))}


@lru_cache(maxsize=4096)
def _day_string(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, timezone.utc).strftime("%Y-%m-%d")


def flatten(deltas: list[Delta], keys: dict[tuple[str, str, str], int]) -> list[Any]:
    """An event's deltas as ``[key index, amount, ...]``, each ``(dimension, value, metric)``
    numbered in ``keys`` the first time it is seen: a record of many events names each key
    once."""
    flat: list[Any] = []
    for dimension, value, metric, amount in deltas:
        key = (dimension, value, metric)
        index = keys.get(key)
        if index is None:
            index = keys[key] = len(keys)
        flat.append(index)
        flat.append(amount)
    return flat


def sum_fresh(events: list[Any], done: int) -> tuple[dict[int, Any], int]:
    """The sums per key index of the flattened events (``[offset, [index, amount, ...]]``) past
    offset ``done``, and how many events that is."""
    sums: dict[int, Any] = {}
    fresh = 0
    for event in events:
        if event[0] <= done:
            continue
        fresh += 1
        flat = event[1]
        for position in range(0, len(flat), 2):
            index = flat[position]
            sums[index] = sums.get(index, 0) + flat[position + 1]
    return sums, fresh
