"""Marketing automation: triggers fire scenarios; a scenario that passes its filters runs its
actions in order and is recorded as an execution (PRODUCT.md §2 "Marketing automation").

Scenarios are indexed by trigger name in the compiled program, so firing a trigger looks at
the scenarios of that trigger only. A scenario is itself the trigger ``scenario:<id>`` of
others; chains deeper than the program's ``chain_depth`` are cut and reported (ChainCut).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from engine.context import Context, round_points
from engine.effects import ChainCut, Execution, Message, Webhook
from engine.points import credit, debit, standard_bonus
from engine.program import Scenario, Trigger, in_brand

PLACEHOLDER = re.compile(r"\{\{\s*member\.([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_\-]+))?\s*\}\}")


def render(text: Any, ctx: Context) -> Any:
    """Replace ``{{member.id}}``, ``{{member.balance}}``, ``{{member.profile.<field>}}`` (and
    ``tier``, ``pending``, ``brand``, ``streak``) — plain substitution, never evaluation.
    Unknown placeholders become empty. Objects and lists are rendered value by value."""
    if isinstance(text, dict):
        return {k: render(v, ctx) for k, v in text.items()}
    if isinstance(text, list):
        return [render(v, ctx) for v in text]
    if not isinstance(text, str) or "{{" not in text:
        return text
    state = ctx.state

    def value(match: re.Match) -> str:
        name, sub = match.group(1), match.group(2)
        if sub:
            found = state.profile.get(sub) if name == "profile" else None
        else:
            read = MEMBER_FIELDS.get(name)
            found = None if read is None else read(state)
        return "" if found is None else str(found)
    return PLACEHOLDER.sub(value, text)


MEMBER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "id": lambda s: s.id, "balance": lambda s: s.balance, "pending": lambda s: s.pending_points,
    "tier": lambda s: s.tier, "brand": lambda s: s.brand, "streak": lambda s: s.streak_current}


def fire(ctx: Context, trigger: str, payload: dict | None = None, depth: int = 0) -> None:
    """Run every active scenario of ``trigger`` whose filters the member passes."""
    scenarios = ctx.program.scenarios_by_trigger.get(trigger)
    if scenarios:
        for scenario in scenarios:
            run(ctx, scenario, trigger, payload or {}, depth)


def fire_configured(ctx: Context, trigger_type: str, matches: Callable[[Trigger], bool],
                    payload: dict | None = None) -> None:
    """Fire the configured triggers of one type whose parameters match."""
    for trigger in ctx.program.triggers_by_type.get(trigger_type, ()):
        if in_brand(trigger, ctx.state.brand) and matches(trigger):
            fire(ctx, trigger.id, payload)


def passes_filters(ctx: Context, scenario: Scenario) -> bool:
    """Status, brand, window (the event's time, ``from`` inclusive, ``to`` exclusive), tier and
    segment filters, and the per-member limit."""
    state = ctx.state
    if state.status != "active" or (scenario.brands and state.brand not in scenario.brands):
        return False
    if not scenario.window_from <= ctx.at < scenario.window_to:
        return False
    if scenario.tiers and state.tier not in scenario.tiers:
        return False
    if scenario.segments and not scenario.segments.intersection(state.segments):
        return False
    limit = scenario.limit_per_member
    return limit is None or state.executions.get(scenario.id, 0) < limit


def run(ctx: Context, scenario: Scenario, trigger: str, payload: dict, depth: int) -> None:
    if not passes_filters(ctx, scenario):
        return
    state = ctx.state
    state.executions[scenario.id] = state.executions.get(scenario.id, 0) + 1
    done = [ACTIONS[action["type"]](ctx, scenario, action, payload)
            for action in scenario.actions]
    ctx.effects.append(Execution(ctx.next_id("X"), scenario.id, state.id, ctx.at, trigger,
                                 ctx.event.id, tuple([a for a in done if a]), depth))
    chained = scenario.chained
    if chained not in ctx.program.scenarios_by_trigger or state.status != "active":
        return
    if depth + 1 > ctx.settings.chain_depth:
        ctx.effects.append(ChainCut(scenario=scenario.id, depth=depth + 1, event=ctx.event.id))
        return
    fire(ctx, chained, payload, depth + 1)


# -- actions: each returns its type name (or "" when it had nothing to act on) ----------------

def _points_add(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    credit(ctx, "award", int(action["points"]), scenario.id)
    return "points.add"


def _points_multiply(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    base = payload.get("standard_points")
    if not base:
        return ""
    bonus = round_points(base * float(action["percent"]) / 100.0, ctx.settings.rounding)
    standard_bonus(ctx, bonus, payload.get("transaction"), scenario.id)
    return "points.multiply"


def _points_subtract(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    if "points" in action:
        points = int(action["points"])
    else:
        points = round_points(ctx.state.balance * float(action["percent"]) / 100.0, "floor")
    debit(ctx, "deduct", points, scenario.id)
    return "points.subtract"


def _reward_issue(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    request = ctx.next_id("R")
    if "reward" in action:
        reward = action["reward"]
        ctx.state.orders = {**ctx.state.orders, request: [reward, 0, "gift"]}
        ctx.send("rewards", reward, "reward.reserve",
                 {"order": request, "reward": reward, "points": 0, "member": ctx.state.id},
                 suffix=request.rpartition(":")[2], member=ctx.state.id)
    else:
        pool = action["pool"]
        ctx.send("pools", pool, "pool.issue",
                 {"request": request, "pool": pool, "member": ctx.state.id,
                  "scenario": scenario.id},
                 suffix=request.rpartition(":")[2], member=ctx.state.id)
    return "reward.issue"


def _tier_set(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    ctx.state.tier_manual = action["tier"]
    ctx.dirty.add("tier")
    return "tier.set"


def _tags(add: bool):
    def change(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
        field = action["field"]
        current = set(ctx.state.tags.get(field, ()))
        updated = current | set(action["tags"]) if add else current - set(action["tags"])
        if updated != current:
            tags = {k: v for k, v in ctx.state.tags.items() if k != field}
            if updated:
                tags[field] = sorted(updated)
            ctx.state.tags = tags
            ctx.dirty.add(f"tags.{field}")
        return "tags.add" if add else "tags.remove"
    return change


def _message(channel: str):
    def send(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
        ctx.effects.append(Message(
            id=ctx.next_id("M"), member=ctx.state.id, time=ctx.at, channel=channel,
            subject=render(action.get("subject"), ctx), body=render(action.get("body", ""), ctx),
            title=render(action.get("title"), ctx), target=render(action.get("target"), ctx),
            user=action.get("user"), scenario=scenario.id, brand=ctx.state.brand))
        return {"email": "message.email", "sms": "message.sms", "internal": "message.internal",
                "push": "message.push", "staff_email": "staff.email"}[channel]
    return send


def _webhook(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    ctx.effects.append(Webhook(id=ctx.next_id("M"), member=ctx.state.id, time=ctx.at,
                               url=action["url"], method=action.get("method", "POST"),
                               body=render(action.get("body"), ctx), scenario=scenario.id,
                               brand=ctx.state.brand))
    return "webhook"


def _member_delete(ctx: Context, scenario: Scenario, action: dict, payload: dict) -> str:
    erase(ctx)
    return "member.delete"


def erase(ctx: Context) -> None:
    """Delete the account: personal data goes, anonymised totals and the ledger stay."""
    state = ctx.state
    state.status = "deleted"
    state.profile = {}
    state.consents = {}
    state.cards = []
    state.tags = {}
    state.codes = []
    state.web = {}
    state.referrer = None
    state.qualified_members = []
    ctx.dirty.update(("status", "profile", "tags"))
    ctx.timers_dirty = True


ACTIONS: dict[str, Callable[[Context, Scenario, dict, dict], str]] = {
    "points.add": _points_add, "points.multiply": _points_multiply,
    "points.subtract": _points_subtract, "reward.issue": _reward_issue,
    "tier.set": _tier_set, "tags.add": _tags(True), "tags.remove": _tags(False),
    "message.email": _message("email"), "message.sms": _message("sms"),
    "message.internal": _message("internal"), "message.push": _message("push"),
    "staff.email": _message("staff_email"), "webhook": _webhook,
    "member.delete": _member_delete,
}
