"""The engine's one entry point: apply one event to one member's state under a program.

``apply(state, event, program, now) -> Result(state, effects)`` is deterministic: rules reason
with the event's own time (``now`` only stamps what has no time of its own), the input state is
never modified (a clone is changed and returned), and an event id already applied to the
member changes nothing. After the event's own rules, the member is reclassified (tier,
``balance_exceeded``, segments) until nothing more changes, which lets a scenario's points move
a member into a segment that fires another scenario — bounded by the chain depth.

Only what an event can affect is evaluated: the tier when a tier metric's input changed (or on
a timer, or under a changed program), the segments reading a fact that changed (each one a bit
of ``Context.dirty``; plus those on facts that move with time alone), the scenarios indexed by
the trigger that fired, and the due times when something they depend on changed.

The per-event path is written to compile well with mypyc (``make native``): typed, with small
classes instead of closures; it runs the same as plain Python.
"""

from __future__ import annotations

from typing import Iterable

from engine.context import Context, round_points
from engine.effects import Message, Rejection, TimersChanged
from engine.events import Event
from engine.program import Program, Segment, in_brand
from engine.points import (count_purchase, debit, keep_purchase, purchase_rate, reverse_return,
                           standard_earn)
from engine.scenarios import fire, fire_configured
from engine.state import (BALANCE, BRAND, POINTS_EARNED_TOTAL, SEEN_CHARS, SPEND_TOTAL, STATUS,
                          STREAK, TIER, MemberState, bucket_add)
from engine.timers import next_due, on_timer, period_index

#: Events that are the member's own operations (they count as activity).
ACTIVITY_TYPES = frozenset({"member.joined", "member.activated", "member.profile_updated",
                            "member.consent_changed", "purchase", "return", "visit",
                            "web.activity", "points.added", "points.subtracted",
                            "reward.ordered", "review.approved", "quiz.solved",
                            "goal.donated"})
#: Distinct web actions counted per member (action names come from the outside; the first
#: ones seen are counted, so the state stays bounded).
WEB_ACTIONS = 32
#: Referred members remembered by the referrer to ignore a repeated ``referral.qualified``.
#: "Once ever" is kept by the referred member (``qualify_sent``); this is a second guard, bounded
#: so that a promoter with thousands of referrals keeps a small state.
QUALIFIED_KEPT = 100
#: Events that make sense for a member that does not exist yet.
SILENT_WITHOUT_MEMBER = frozenset({"timer", "message.status", "promo.refused", "goal.reached",
                                   "reward.refused"})
#: The copy-on-write base of a joining member: its containers are never the new state's.
NEW = MemberState(id="", brand="", joined=0.0)


class Result:
    """The member's state after the event (None if it never joined) and the effects."""

    __slots__ = ("state", "effects")

    def __init__(self, state: MemberState | None, effects: list) -> None:
        self.state = state
        self.effects = effects


def apply(state: MemberState | None, event: Event, program: Program, now: float) -> Result:
    original = state
    if state is None:
        if event.type != "member.joined":
            if event.type in SILENT_WITHOUT_MEMBER:
                return Result(None, [])
            return _refused(None, "member_unknown", [{
                "field": "member", "problem": f"no member {event.member!r}; the member must "
                                             f"join first (member.joined)"}])
        settings = program.settings(event.brand)
        state = MemberState(id=event.member, brand=event.brand, joined=event.time)
        ctx = Context(state, NEW, event, program, settings, now)
        if not _join(ctx):
            return Result(None, ctx.effects)
    else:
        if f"\n{event.id}\n" in state.seen:
            return Result(state, [])
        ctx = Context(state.clone(), state, event, program, program.settings(state.brand), now)
        if state.status != "active":
            if event.type in ACTIVITY_TYPES:
                ctx.reject("member_deleted", [{"field": "member",
                                               "problem": "the member's account was deleted"}])
            _remember(ctx)
            return Result(ctx.state, ctx.effects)
        handler = HANDLERS.get(event.type)
        if handler is not None:
            handler(ctx)
    if ctx.rejected:
        rejections = [e for e in ctx.effects if type(e) is Rejection]
        # A refused event changes nothing, but is remembered so that a replay is not refused
        # (and dead-lettered) a second time.
        if original is None:
            return Result(None, rejections)
        ctx.state = original.clone()
        _remember(ctx)
        return Result(ctx.state, rejections)
    activity = event.type in ACTIVITY_TYPES
    if activity:
        last = ctx.state.last_activity
        if not last or last < event.time:
            ctx.state.last_activity = event.time
    _settle(ctx)
    _remember(ctx)
    _timers(ctx, activity)
    return Result(ctx.state, ctx.effects)


def _timers(ctx: Context, activity: bool) -> None:
    """Recompute the due times when something they depend on changed.

    A due time may be early but never late: after an activity the inactivity timer keeps its
    earlier time, and when it fires the engine finds the member active and schedules the
    real one. So the timer index is not rewritten on every purchase."""
    state = ctx.state
    if not ctx.timers_dirty and state.timers_for == ctx.program.timer_signature:
        if not activity or "inactivity" not in ctx.program.triggers_by_type:
            return
        for entry in state.due:
            if entry[1] == "inactivity":
                return
    due = next_due(ctx)
    state.timers_for = ctx.program.timer_signature
    if due != state.due:
        state.due = due
        ctx.effects.append(TimersChanged(due=tuple((t, kind) for t, kind in due)))


def _refused(state: MemberState | None, reason: str, details: list) -> Result:
    return Result(state, [Rejection(reason=reason, details=details)])


def _remember(ctx: Context) -> None:
    state = ctx.state
    if state.last_time is None or ctx.event.time > state.last_time:
        state.last_time = ctx.event.time
    seen = f"{state.seen}{ctx.event.id}\n"
    if len(seen) > SEEN_CHARS:
        seen = seen[seen.index("\n", len(seen) - SEEN_CHARS):]
    state.seen = seen


# -- after every event: tier, balance thresholds, segments, referral condition -------------------

#: Dirty facts after which the member's tier may change.
TIER_INPUTS = SPEND_TOTAL | POINTS_EARNED_TOTAL | TIER


def _settle(ctx: Context) -> None:
    program = ctx.program
    reclassify = ctx.event.type == "timer" or ctx.state.timers_for != program.timer_signature
    for _ in range(ctx.settings.chain_depth + 1):
        before = len(ctx.effects)
        dirty = ctx.dirty
        ctx.dirty = 0
        if reclassify or dirty & TIER_INPUTS:
            _classify_tier(ctx)
        reclassify = False
        if dirty & BALANCE:
            _balance_exceeded(ctx)
        candidates = program.segments_for(dirty)
        if candidates:
            _segments(ctx, candidates)
        if len(ctx.effects) == before and not ctx.dirty:
            break
    _referral_condition(ctx)


def _classify_tier(ctx: Context) -> None:
    """The highest tier whose metric the member reaches, or the manual one if higher. Tiers
    mostly share one metric, so a metric is read again only when the next tier's differs."""
    state = ctx.state
    tiers = ctx.program.tiers_for(state.brand)
    if not tiers and state.tier is None:
        return
    at = ctx.at
    manual_id = state.tier_manual
    metric = ""
    value = 0.0
    earned = manual = None
    for tier in tiers:
        if earned is None:
            if tier.metric != metric:
                metric = tier.metric
                value = tier.measure.read(state, at) or 0
            if value >= tier.min:
                earned = tier
                if manual_id is None:
                    break
        if tier.id == manual_id:
            manual = tier
    chosen = earned if manual is None or (earned is not None and earned.rank > manual.rank) \
        else manual
    new = None if chosen is None else chosen.id
    if new == state.tier:
        return
    old = state.tier
    state.tier = new
    ctx.dirty |= TIER
    ctx.timers_dirty = True
    fire_configured(ctx, "tier_changed",
                    lambda t: t.params.get("from") in (None, old)
                    and t.params.get("to") in (None, new),
                    {"from": old, "to": new})


def _balance_exceeded(ctx: Context) -> None:
    state = ctx.state
    for trigger in ctx.program.triggers_by_type.get("balance_exceeded", ()):
        if trigger.id in state.exceeded or not in_brand(trigger, state.brand):
            continue
        if state.balance >= trigger.params["points"]:
            state.exceeded = [*state.exceeded, trigger.id]
            fire(ctx, trigger.id)


def _segments(ctx: Context, candidates: tuple[Segment, ...]) -> None:
    state, at = ctx.state, ctx.at
    current = state.segments
    active = state.status == "active"
    brand = state.brand
    entered: list[str] = []
    left: list[str] = []
    for segment in candidates:
        inside = (active and (not segment.brands or brand in segment.brands)
                  and segment.rule.holds(state, at))
        if inside:
            if segment.id not in current:
                entered.append(segment.id)
        elif segment.id in current:
            left.append(segment.id)
    if not entered and not left:
        return
    state.segments = sorted(set(current).union(entered).difference(left))
    program = ctx.program
    for segment_id in entered:
        for trigger in program.entered_triggers.get(segment_id, ()):
            if in_brand(trigger, brand):
                fire(ctx, trigger.id)
    for segment_id in left:
        for trigger in program.left_triggers.get(segment_id, ()):
            if in_brand(trigger, brand):
                fire(ctx, trigger.id)


def _referral_condition(ctx: Context) -> None:
    state = ctx.state
    if state.referrer is None or state.qualify_sent:
        return
    settings = ctx.settings
    met = ((settings.qualify_spend is not None and state.spend_total >= settings.qualify_spend)
           or (settings.qualify_points is not None
               and state.points_earned_total >= settings.qualify_points))
    if met:
        state.qualify_sent = True
        ctx.send("events", state.referrer, "referral.qualified", {"referred": state.id},
                 suffix="referral.qualified")


# -- handlers, one per event type --------------------------------------------------------------

def _join(ctx: Context) -> bool:
    state, data = ctx.state, ctx.event.data
    profile = dict(data.get("profile") or {})
    problems = ctx.program.blacklisted(state.brand, profile)
    if problems:
        ctx.reject("blacklisted", problems)
        return False
    state.profile = profile
    state.channel = data.get("channel")
    if data.get("card"):
        state.cards = [data["card"]]
    ctx.dirty |= _field_bits(ctx, "profile.", profile) | BALANCE | TIER | BRAND | STATUS
    referrer = data.get("referrer")
    if referrer and referrer != state.id:
        state.referrer = referrer
        ctx.send("events", referrer, "referral.made", {"referred": state.id},
                 suffix="referral.made")
    fire(ctx, "member.joined")
    if state.referrer:
        fire(ctx, "referral.registered")
    _profile_completed(ctx, {}, profile)
    return True


def _field_bits(ctx: Context, prefix: str, names: Iterable[str]) -> int:
    """The dirty bits of the fields ``prefix + name`` that some segment reads."""
    bits = ctx.program.field_bits
    found = 0
    for name in names:
        found |= bits.get(prefix + name, 0)
    return found


def _profile_completed(ctx: Context, before: dict, after: dict) -> None:
    fire_configured(ctx, "profile_completed",
                    lambda t: _filled(after, t.params["fields"])
                    and not _filled(before, t.params["fields"]))


def _filled(profile: dict, fields: list) -> bool:
    """Module-level, not nested: compiled, a nested function referenced by a lambda would
    tie the two in a reference cycle, garbage for the collector on every join."""
    return all(profile.get(f) not in (None, "") for f in fields)


def _profile_updated(ctx: Context) -> None:
    state = ctx.state
    changes = ctx.event.data["profile"]
    problems = ctx.program.blacklisted(state.brand, changes)
    if problems:
        ctx.reject("blacklisted", problems)
        return
    before = state.profile
    after = dict(before)
    for key, value in changes.items():
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return
    state.profile = after
    ctx.dirty |= _field_bits(ctx, "profile.", changed)
    if "birthday" in changed:
        ctx.timers_dirty = True
    fire_configured(ctx, "profile_edited",
                    lambda t: any(f in changed for f in t.params["fields"]),
                    {"changed": changed})
    _profile_completed(ctx, before, after)


def _activated(ctx: Context) -> None:
    if not ctx.state.activated:
        ctx.state.activated = True
        fire(ctx, "member.activated")


def _consent(ctx: Context) -> None:
    state, data = ctx.state, ctx.event.data
    name, status = data["consent"], data["status"]
    previous = state.consents.get(name, "undetermined")
    if previous == status:
        return
    state.consents = {**state.consents, name: status}
    ctx.dirty |= ctx.program.field_bits.get(f"consents.{name}", 0)
    if status == "granted":
        fire_configured(ctx, "consent_granted", lambda t: t.params["consent"] == name)


def _standard_add(ctx: Context, points: int, tx: str | None) -> None:
    reached = standard_earn(ctx, "earn", points, tx)
    if points > 0:
        fire(ctx, "points.standard_added",
             {"standard_points": points, "transaction": tx, "pending": not reached})


def _purchase(ctx: Context) -> None:
    data = ctx.event.data
    tx, amount = data["transaction"], float(data["amount"])
    if tx in ctx.state.transactions:
        ctx.reject("duplicate_transaction", [{"field": "data.transaction",
                                              "problem": f"transaction {tx!r} was already "
                                                         f"recorded for this member"}])
        return
    points = round_points(amount * purchase_rate(ctx), ctx.settings.rounding)
    count_purchase(ctx, amount)
    _standard_add(ctx, points, tx)
    keep_purchase(ctx, tx, amount, points + ctx.purchase_bonus)


def _return(ctx: Context) -> None:
    data = ctx.event.data
    reverse_return(ctx, data["transaction"], float(data["amount"]))


def _visit(ctx: Context) -> None:
    state = ctx.state
    days = state.visit_days
    if days is ctx.base.visit_days:
        days = state.visit_days = days.copy()
    bucket_add(days, ctx.day, 1)
    period = period_index(ctx.at, ctx.settings.streak_period, ctx.settings.timezone)
    last = state.streak_period
    if last is None or period > last + 1:
        state.streak_current = 1
    elif period == last + 1:
        state.streak_current += 1
    else:
        period = last  # the same period, or a late visit of an earlier one
    if period != last:
        state.streak_period = period
        state.streak_best = max(state.streak_best, state.streak_current)
        ctx.dirty |= STREAK
        current = state.streak_current
        fire_configured(ctx, "visits_in_row", lambda t: t.params["count"] == current)
    _standard_add(ctx, ctx.settings.visit_points, None)


def _web_activity(ctx: Context) -> None:
    action = ctx.event.data["action"]
    web = ctx.state.web
    if action in web or len(web) < WEB_ACTIONS:
        ctx.state.web = {**web, action: web.get(action, 0) + 1}
    fire(ctx, "web.activity", {"action": action})


def _points_added(ctx: Context) -> None:
    _standard_add(ctx, int(ctx.event.data["points"]), None)


def _points_subtracted(ctx: Context) -> None:
    points = int(ctx.event.data["points"])
    if points > ctx.state.balance:
        ctx.reject("insufficient_points", [{"field": "data.points",
                                            "problem": f"the balance is {ctx.state.balance}, "
                                                       f"cannot subtract {points}"}])
        return
    debit(ctx, "spend", points)
    fire(ctx, "points.standard_subtracted", {"subtracted_points": points})


def _reward_ordered(ctx: Context) -> None:
    reward_id = ctx.event.data["reward"]
    reward = ctx.program.rewards.get(reward_id)
    if reward is None or (reward.get("brands") and ctx.state.brand not in reward["brands"]):
        ctx.reject("unknown_reward", [{"field": "data.reward",
                                       "problem": f"no reward {reward_id!r} for this brand"}])
        return
    price = int(reward["points"])
    if price > ctx.state.balance:
        ctx.reject("insufficient_points", [{"field": "data.reward",
                                            "problem": f"costs {price} points, the balance is "
                                                       f"{ctx.state.balance}"}])
        return
    order = ctx.event.id
    ctx.state.orders = {**ctx.state.orders, order: [reward_id, price, reward["kind"]]}
    ctx.send("rewards", reward_id, "reward.reserve",
             {"order": order, "reward": reward_id, "points": price, "member": ctx.state.id},
             suffix="reserve", member=ctx.state.id)


def _reward_reserved(ctx: Context) -> None:
    state, data = ctx.state, ctx.event.data
    order = state.orders.get(data["order"])
    if order is None:
        return
    reward_id, price, kind = order
    state.orders = {k: v for k, v in state.orders.items() if k != data["order"]}
    if price > state.balance:
        ctx.send("rewards", reward_id, "reward.release",
                 {"order": data["order"], "reward": reward_id, "member": state.id},
                 suffix="release", member=state.id)
        ctx.effects.append(Message(id=ctx.next_id("M"), member=state.id, time=ctx.at,
                                   channel="internal", subject=None,
                                   body=f"Your order of {reward_id} was cancelled: it costs "
                                        f"{price} points and your balance is {state.balance}.",
                                   brand=state.brand))
        return
    if price:
        debit(ctx, "redeem", price)
    if (ctx.program.rewards.get(reward_id) or {}).get("kind", kind) == "digital":
        fire(ctx, "reward.digital_issued", {"reward": reward_id})
    if kind != "gift":
        fire_configured(ctx, "reward_ordered", lambda t: t.params["reward"] == reward_id)


def _reward_refused(ctx: Context) -> None:
    state, data = ctx.state, ctx.event.data
    order = state.orders.get(data["order"])
    if order is None:
        return
    state.orders = {k: v for k, v in state.orders.items() if k != data["order"]}
    ctx.effects.append(Message(id=ctx.next_id("M"), member=state.id, time=ctx.at,
                               channel="internal", subject=None,
                               body=f"Sorry, {order[0]} is out of stock; no points were taken.",
                               brand=state.brand))


def _promo_issued(ctx: Context) -> None:
    data = ctx.event.data
    state = ctx.state
    state.codes = [*state.codes, [data["pool"], data["code"], ctx.at]][-20:]
    ctx.effects.append(Message(id=ctx.next_id("M"), member=state.id, time=ctx.at,
                               channel="internal", subject=None,
                               body=f"Your code: {data['code']}",
                               scenario=data.get("scenario"), brand=state.brand))
    fire(ctx, "reward.digital_issued", {"pool": data["pool"]})


def _goal_donated(ctx: Context) -> None:
    data = ctx.event.data
    goal, points = data["goal"], int(data["points"])
    if goal not in ctx.program.goals:
        ctx.reject("unknown_goal", [{"field": "data.goal", "problem": f"no goal {goal!r}"}])
        return
    if points > ctx.state.balance:
        ctx.reject("insufficient_points", [{"field": "data.points",
                                            "problem": f"the balance is {ctx.state.balance}"}])
        return
    debit(ctx, "donate", points)
    ctx.send("goals", goal, "goal.donation",
             {"goal": goal, "member": ctx.state.id, "points": points,
              "donation": ctx.event.id}, suffix="donation", member=ctx.state.id)
    fire_configured(ctx, "goal_donated", lambda t: t.params["goal"] == goal)


def _referral_made(ctx: Context) -> None:
    ctx.state.referred += 1
    fire(ctx, "referral.made", {"referred": ctx.event.data["referred"]})


def _referral_qualified(ctx: Context) -> None:
    referred = ctx.event.data["referred"]
    state = ctx.state
    if referred in state.qualified_members:
        return
    state.qualified_members = [*state.qualified_members, referred][-QUALIFIED_KEPT:]
    state.qualified += 1
    fire(ctx, "referral.qualified", {"referred": referred})


def _trigger_fired(ctx: Context) -> None:
    trigger = ctx.program.triggers.get(ctx.event.data["trigger"])
    if trigger is not None and trigger.type == "on_demand" and in_brand(trigger, ctx.state.brand):
        fire(ctx, trigger.id)


def _on(key: str, system: str | None = None, trigger_type: str | None = None):
    """A handler that only fires triggers: a system one and/or configured ones whose
    parameter ``key`` equals the event's."""
    def handle(ctx: Context) -> None:
        value = ctx.event.data.get(key)
        if system:
            fire(ctx, system, {key: value})
        if trigger_type:
            fire_configured(ctx, trigger_type, lambda t: t.params.get(key) == value)
    return handle


def _already_member(ctx: Context) -> None:
    ctx.reject("member_exists", [{"field": "member",
                                  "problem": f"member {ctx.state.id!r} has already joined"}])


HANDLERS = {
    "member.joined": _already_member,
    "member.activated": _activated,
    "member.profile_updated": _profile_updated,
    "member.consent_changed": _consent,
    "purchase": _purchase,
    "return": _return,
    "visit": _visit,
    "web.activity": _web_activity,
    "points.added": _points_added,
    "points.subtracted": _points_subtracted,
    "reward.ordered": _reward_ordered,
    "reward.issued": _on("reward", system="reward.physical_issued"),
    "reward.shipped": _on("reward", system="reward.physical_shipped"),
    "review.approved": _on("review", system="review.approved"),
    "quiz.solved": _on("quiz", trigger_type="quiz_solved"),
    "goal.donated": _goal_donated,
    "goal.reached": _on("goal", trigger_type="goal_reached"),
    "referral.made": _referral_made,
    "referral.qualified": _referral_qualified,
    "timer": on_timer,
    "trigger.fired": _trigger_fired,
    "reward.reserved": _reward_reserved,
    "reward.refused": _reward_refused,
    "promo.issued": _promo_issued,
}
