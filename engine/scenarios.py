"""Marketing automation: triggers fire scenarios; a scenario that passes its filters runs its
actions in order and is recorded as an execution (PRODUCT.md §2 "Marketing automation").

Scenarios are indexed by trigger name in the compiled program, so firing a trigger looks at
the scenarios of that trigger only. Their actions are compiled with the program into closures
over parsed parameters and pre-split message templates, so a run does no lookups by action type
and no template parsing. A scenario is itself the trigger ``scenario:<id>`` of
others; chains deeper than the program's ``chain_depth`` are cut and reported (ChainCut).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from engine.context import Context, round_points
from engine.effects import ChainCut, Execution, Message, Webhook
from engine.points import credit, debit, standard_bonus
from engine.program import Scenario, Trigger, in_brand
from engine.state import MemberState

PLACEHOLDER = re.compile(r"\{\{\s*member\.([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_\-]+))?\s*\}\}")

#: What an action returns: its type name, or "" when it had nothing to act on.
Step = Callable[[Context, dict], str]
Template = Callable[[MemberState], Any]

MEMBER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "id": lambda s: s.id, "balance": lambda s: s.balance, "pending": lambda s: s.pending_points,
    "tier": lambda s: s.tier, "brand": lambda s: s.brand, "streak": lambda s: s.streak_current}
NO_PAYLOAD: dict = {}


def template(value: Any) -> Template:
    """A message text as a function of the member state, parsed once when the program is
    compiled: ``{{member.id}}``, ``{{member.balance}}``, ``{{member.profile.<field>}}`` (and
    ``tier``, ``pending``, ``brand``, ``streak``) are substituted — plain substitution, never
    evaluation. Unknown placeholders become empty. Objects and lists are rendered value by
    value, into new containers each time."""
    if isinstance(value, dict):
        items = [(k, template(v)) for k, v in value.items()]
        return lambda state: {k: render(state) for k, render in items}
    if isinstance(value, list):
        parts = [template(v) for v in value]
        return lambda state: [render(state) for render in parts]
    pieces: list = []
    last = 0
    for match in PLACEHOLDER.finditer(value) if isinstance(value, str) else ():
        pieces += [value[last:match.start()], _placeholder(match.group(1), match.group(2))]
        last = match.end()
    if not pieces:
        return lambda state: value
    pieces.append(value[last:])
    literals, reads = pieces[0::2], pieces[1::2]

    def render(state: MemberState) -> str:
        out = literals[0]
        for read, literal in zip(reads, literals[1:]):
            found = read(state)
            out = f"{out}{literal}" if found is None else f"{out}{found}{literal}"
        return out
    return render


def _placeholder(name: str, sub: str | None) -> Callable[[MemberState], Any]:
    if sub:
        return (lambda state: state.profile.get(sub)) if name == "profile" else \
            (lambda state: None)
    return MEMBER_FIELDS.get(name) or (lambda state: None)


def fire(ctx: Context, trigger: str, payload: dict | None = None, depth: int = 0) -> None:
    """Run every active scenario of ``trigger`` whose filters the member passes."""
    scenarios = ctx.program.scenarios_by_trigger.get(trigger)
    if scenarios:
        for scenario in scenarios:
            run(ctx, scenario, trigger, NO_PAYLOAD if payload is None else payload, depth)


def fire_configured(ctx: Context, trigger_type: str, matches: Callable[[Trigger], bool],
                    payload: dict | None = None) -> None:
    """Fire the configured triggers of one type whose parameters match."""
    for trigger in ctx.program.triggers_by_type.get(trigger_type, ()):
        if in_brand(trigger, ctx.state.brand) and matches(trigger):
            fire(ctx, trigger.id, payload)


def run(ctx: Context, scenario: Scenario, trigger: str, payload: dict, depth: int) -> None:
    """Check the filters — status, brand, window (the event's time, ``from`` inclusive, ``to``
    exclusive), tier, segments, the per-member limit — then run the compiled actions."""
    state = ctx.state
    if state.status != "active" or (scenario.brands and state.brand not in scenario.brands):
        return
    if not scenario.window_from <= ctx.at < scenario.window_to:
        return
    if scenario.tiers and state.tier not in scenario.tiers:
        return
    if scenario.segments and scenario.segments.isdisjoint(state.segments):
        return
    executions = state.executions
    runs = executions.get(scenario.id, 0)
    if scenario.limit_per_member is not None and runs >= scenario.limit_per_member:
        return
    if executions is ctx.base.executions:
        executions = state.executions = executions.copy()
    executions[scenario.id] = runs + 1
    steps = scenario.steps
    if len(steps) == 1:  # most scenarios: no comprehensions to build
        name = steps[0](ctx, payload)
        done = (name,) if name else ()
    else:
        done = tuple([name for name in [step(ctx, payload) for step in steps] if name])
    ctx.execution_seq += 1
    ctx.effects.append(Execution(f"{ctx.event.id}:X{ctx.execution_seq}", scenario.id, state.id,
                                 ctx.at, trigger, ctx.event.id, done, depth))
    chained = scenario.chained
    if chained not in ctx.program.scenarios_by_trigger or state.status != "active":
        return
    if depth + 1 > ctx.settings.chain_depth:
        ctx.effects.append(ChainCut(scenario.id, depth + 1, ctx.event.id))
        return
    fire(ctx, chained, payload, depth + 1)


# -- actions, compiled once per scenario into steps ``step(ctx, payload) -> type name`` -------

def compile_actions(scenario_id: str, actions: tuple[dict, ...]) -> tuple[Step, ...]:
    """The scenario's actions as closures over their parsed parameters (the documents are
    validated data; nothing in them is evaluated)."""
    return tuple(ACTIONS[action["type"]](scenario_id, action) for action in actions)


def _points_add(scenario_id: str, action: dict) -> Step:
    points = int(action["points"])

    def step(ctx: Context, payload: dict) -> str:
        credit(ctx, "award", points, scenario_id)
        return "points.add"
    return step


def _points_multiply(scenario_id: str, action: dict) -> Step:
    percent = float(action["percent"])

    def step(ctx: Context, payload: dict) -> str:
        base = payload.get("standard_points")
        if not base:
            return ""
        bonus = round_points(base * percent / 100.0, ctx.settings.rounding)
        standard_bonus(ctx, bonus, payload.get("transaction"), scenario_id)
        return "points.multiply"
    return step


def _points_subtract(scenario_id: str, action: dict) -> Step:
    fixed = int(action["points"]) if "points" in action else None
    percent = None if fixed is not None else float(action["percent"])

    def step(ctx: Context, payload: dict) -> str:
        points = fixed if percent is None else \
            round_points(ctx.state.balance * percent / 100.0, "floor")
        debit(ctx, "deduct", points, scenario_id)
        return "points.subtract"
    return step


def _reward_issue(scenario_id: str, action: dict) -> Step:
    reward, pool = action.get("reward"), action.get("pool")

    def step(ctx: Context, payload: dict) -> str:
        request = ctx.next_id("R")
        suffix = request.rpartition(":")[2]
        state = ctx.state
        if reward is not None:
            state.orders = {**state.orders, request: [reward, 0, "gift"]}
            ctx.send("rewards", reward, "reward.reserve",
                     {"order": request, "reward": reward, "points": 0, "member": state.id},
                     suffix=suffix, member=state.id)
        else:
            ctx.send("pools", pool, "pool.issue",
                     {"request": request, "pool": pool, "member": state.id,
                      "scenario": scenario_id}, suffix=suffix, member=state.id)
        return "reward.issue"
    return step


def _tier_set(scenario_id: str, action: dict) -> Step:
    tier = action["tier"]

    def step(ctx: Context, payload: dict) -> str:
        ctx.state.tier_manual = tier
        ctx.dirty.add("tier")
        return "tier.set"
    return step


def _tags(add: bool):
    name = "tags.add" if add else "tags.remove"

    def compile_tags(scenario_id: str, action: dict) -> Step:
        field, given = action["field"], frozenset(action["tags"])
        dirty = f"tags.{field}"

        def step(ctx: Context, payload: dict) -> str:
            state = ctx.state
            current = set(state.tags.get(field, ()))
            updated = current | given if add else current - given
            if updated != current:
                tags = {k: v for k, v in state.tags.items() if k != field}
                if updated:
                    tags[field] = sorted(updated)
                state.tags = tags
                ctx.dirty.add(dirty)
            return name
        return step
    return compile_tags


def _message(channel: str, name: str):
    def compile_message(scenario_id: str, action: dict) -> Step:
        subject, body = template(action.get("subject")), template(action.get("body", ""))
        title, target = template(action.get("title")), template(action.get("target"))
        user = action.get("user")

        def step(ctx: Context, payload: dict) -> str:
            state = ctx.state
            ctx.message_seq += 1
            ctx.effects.append(Message(
                f"{ctx.event.id}:M{ctx.message_seq}", state.id, ctx.at, channel,
                subject(state), body(state), title(state), target(state), user, scenario_id,
                "queued", state.brand))
            return name
        return step
    return compile_message


def _webhook(scenario_id: str, action: dict) -> Step:
    url, method, body = action["url"], action.get("method", "POST"), template(action.get("body"))

    def step(ctx: Context, payload: dict) -> str:
        state = ctx.state
        ctx.message_seq += 1
        ctx.effects.append(Webhook(f"{ctx.event.id}:M{ctx.message_seq}", state.id, ctx.at, url,
                                   method, body(state), scenario_id, state.brand))
        return "webhook"
    return step


def _member_delete(scenario_id: str, action: dict) -> Step:
    def step(ctx: Context, payload: dict) -> str:
        erase(ctx)
        return "member.delete"
    return step


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


ACTIONS: dict[str, Callable[[str, dict], Step]] = {
    "points.add": _points_add, "points.multiply": _points_multiply,
    "points.subtract": _points_subtract, "reward.issue": _reward_issue,
    "tier.set": _tier_set, "tags.add": _tags(True), "tags.remove": _tags(False),
    "message.email": _message("email", "message.email"),
    "message.sms": _message("sms", "message.sms"),
    "message.internal": _message("internal", "message.internal"),
    "message.push": _message("push", "message.push"),
    "staff.email": _message("staff_email", "staff.email"), "webhook": _webhook,
    "member.delete": _member_delete,
}
