"""Time-based triggers: the member's next due times (for the per-partition timer index in
tables/) and what happens when a ``timer`` event says one has passed.

Kinds: ``pending`` (returns window ends), ``expiry`` (oldest lot expires), ``inactivity``,
``birthday``, ``date`` (one-off or yearly), ``downgrade`` (a rolling tier metric loses its
oldest day). A timer event is applied at its due time (the event's time), so a replay decides
the same; each occurrence of a trigger is remembered, so it fires once even if timers repeat.

Due times may be early, never late: a timer event does whatever is really due at its time
(any kind) and reschedules the rest. That lets apply (engine/apply.py ``_timers``) leave the
due times alone on most events — e.g. an inactivity timer is not moved by every purchase; it
fires at the old time, finds the member active and re-arms. Scenario windows need no timer: a
window is checked at the time of the event that triggers the scenario (time-based triggers
included).

Birthdays are read from ``profile.birthday`` as ``YYYY-MM-DD`` or ``MM-DD`` and fire at the
trigger's hour in the program's time zone; a one-off date trigger's ``at`` without an offset is
a time in the program's time zone too (never the machine's).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from engine.context import Context
from engine.points import expire_lots, unlock_pending
from engine.program import Trigger, in_brand
from engine.scenarios import fire
from engine.state import DAY, MemberState, day_number

ROLLING_METRICS = ("spend_365d", "points_earned_365d")
UTC: Final = ZoneInfo("UTC")
EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _birthday(profile: dict) -> tuple[int, int] | None:
    raw = profile.get("birthday")
    if not isinstance(raw, str):
        return None
    parts = raw.split("-")
    try:
        month, day = (int(parts[-2]), int(parts[-1])) if len(parts) in (2, 3) else (0, 0)
    except ValueError:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return month, day


def _local(epoch: float, ctx_zone) -> datetime:
    return datetime.fromtimestamp(epoch, ctx_zone)


def _at(zone, year: int, month: int, day: int, hour: int) -> float | None:
    try:
        return datetime(year, month, day, hour, tzinfo=zone).timestamp()
    except ValueError:  # 29 February in a common year, 31 in a short month
        if month == 2 and day == 29:
            return datetime(year, 3, 1, hour, tzinfo=zone).timestamp()
        return None


def birthday_due(state: MemberState, trigger: Trigger, zone, after: float) -> tuple[float, str] | None:
    """The next birthday at or after ``after`` not yet celebrated: (time, year)."""
    birthday = _birthday(state.profile)
    if birthday is None:
        return None
    hour = int(trigger.params.get("hour", 9))
    year = _local(after, zone).year
    for candidate_year in (year - 1, year, year + 1):
        when = _at(zone, candidate_year, *birthday, hour)
        if when is None or state.occurrences.get(trigger.id) == str(candidate_year):
            continue
        if when >= after - DAY and when >= state.joined:
            return when, str(candidate_year)
    return None


def date_due(state: MemberState, trigger: Trigger, zone, after: float) -> tuple[float, str] | None:
    """The next occurrence of a date trigger not yet run: (time, occurrence key)."""
    params = trigger.params
    fired = state.occurrences.get(trigger.id)
    if "at" in params:
        at = datetime.fromisoformat(params["at"])
        once = (at if at.tzinfo is not None else at.replace(tzinfo=zone)).timestamp()
        if fired is None and once >= max(state.joined, after - DAY):
            return once, "once"
        return None
    hour = int(params.get("hour", 9))
    local = _local(max(after - DAY, state.joined), zone)
    for offset in range(0, 25):
        year = local.year + (local.month - 1 + offset) // 12
        month = (local.month - 1 + offset) % 12 + 1
        if month not in params["months"]:
            continue
        when = _at(zone, year, month, int(params["day"]), hour)
        key = f"{year}-{month:02d}"
        if when is not None and when >= state.joined and (fired is None or key > fired):
            return when, key
    return None


def inactivity_due(state: MemberState, trigger: Trigger) -> tuple[float, str] | None:
    if state.last_activity is None:
        return None
    key = repr(state.last_activity)
    if state.occurrences.get(trigger.id) == key:
        return None
    return state.last_activity + int(trigger.params["days"]) * DAY, key


def next_due(ctx: Context) -> list[list]:
    """Every next due time of the member, as sorted ``[time, kind]`` pairs."""
    state = ctx.state
    if state.status != "active":
        return []
    due: set[tuple[float, str]] = set()
    if state.pending:
        due.add((min(e[0] for e in state.pending), "pending"))
    if state.lots:
        due.add((state.lots[0], "expiry"))
    program, zone = ctx.program, ctx.settings.timezone
    for trigger in program.triggers_by_type.get("inactivity", ()):
        found = in_brand(trigger, state.brand) and inactivity_due(state, trigger)
        if found:
            due.add((found[0], "inactivity"))
    for trigger in program.triggers_by_type.get("birthday", ()):
        found = in_brand(trigger, state.brand) and birthday_due(state, trigger, zone, ctx.at)
        if found:
            due.add((found[0], "birthday"))
    for trigger in program.triggers_by_type.get("date", ()):
        found = in_brand(trigger, state.brand) and date_due(state, trigger, zone, ctx.at)
        if found:
            due.add((found[0], "date"))
    if state.tier is not None:
        tier = next((t for t in program.tiers if t.id == state.tier), None)
        if tier is not None and tier.metric in ROLLING_METRICS:
            buckets = state.spend_days if tier.metric == "spend_365d" else state.earned_days
            since = day_number(ctx.at) - 364
            first = next((buckets[index] for index in range(0, len(buckets), 2)
                          if buckets[index + 1] and buckets[index] >= since), None)
            if first is not None:
                due.add(((first + 365) * DAY, "downgrade"))
    return [[t, kind] for t, kind in sorted(due)]


def on_timer(ctx: Context) -> None:
    """Everything due at the timer event's time (its kind is a hint; all due work runs)."""
    state = ctx.state
    ctx.timers_dirty = True
    unlock_pending(ctx)
    expire_lots(ctx)
    program, zone = ctx.program, ctx.settings.timezone
    for trigger in program.triggers_by_type.get("inactivity", ()):
        found = in_brand(trigger, state.brand) and inactivity_due(state, trigger)
        if found and found[0] <= ctx.at:
            state.occurrences = {**state.occurrences, trigger.id: found[1]}
            fire(ctx, trigger.id)
    for kind, finder in (("birthday", birthday_due), ("date", date_due)):
        for trigger in program.triggers_by_type.get(kind, ()):
            found = in_brand(trigger, state.brand) and finder(state, trigger, zone, ctx.at)
            if found and found[0] <= ctx.at:
                state.occurrences = {**state.occurrences, trigger.id: found[1]}
                fire(ctx, trigger.id)


def period_index(epoch: float, period: str, zone: ZoneInfo) -> int:
    """Consecutive periods get consecutive numbers (day, ISO week or month, local time): a
    day's is its ordinal, counted without a datetime in UTC (``ZoneInfo`` keeps one per key)."""
    if period == "day" and zone is UTC:
        return int(epoch // DAY) + EPOCH_ORDINAL
    local = datetime.fromtimestamp(epoch, zone).date()
    if period == "week":
        return (local - timedelta(days=local.weekday())).toordinal() // 7
    if period == "month":
        return local.year * 12 + local.month - 1
    return local.toordinal()
