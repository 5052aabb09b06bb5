"""Marketing automation: triggers fire scenarios; a scenario that passes its filters runs its
actions in order and is recorded as an execution (PRODUCT.md §2 "Marketing automation").

Scenarios are indexed by trigger name in the compiled program, so firing a trigger looks at
the scenarios of that trigger only. Their actions are compiled with the program into objects
holding parsed parameters and pre-split message templates, so a run does no lookups by action
type and no template parsing. A scenario is itself the trigger ``scenario:<id>`` of
others; chains deeper than the program's ``chain_depth`` are cut and reported (ChainCut).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from engine.context import Context, round_points
from engine.effects import ChainCut, Execution, Message, Webhook
from engine.points import credit, debit, standard_bonus
from engine.program import Scenario, Trigger, in_brand
from engine.rules import Attribute, Entry, Fact, PendingPoints
from engine.state import STATUS, TIER, MemberState

PLACEHOLDER = re.compile(r"\{\{\s*member\.([A-Za-z0-9_]+)(?:\.([A-Za-z0-9_\-]+))?\s*\}\}")

#: What a placeholder reads, by name (``profile.<field>`` reads the profile).
MEMBER_FIELDS: dict[str, Fact] = {
    "id": Attribute("id"), "balance": Attribute("balance"), "pending": PendingPoints(),
    "tier": Attribute("tier"), "brand": Attribute("brand"), "streak": Attribute("streak_current")}
NO_PAYLOAD: dict = {}


class Template:
    """A message text (or body) as a function of the member state, parsed once when the program
    is compiled: ``{{member.id}}``, ``{{member.balance}}``, ``{{member.profile.<field>}}`` (and
    ``tier``, ``pending``, ``brand``, ``streak``) are substituted — plain substitution, never
    evaluation. Unknown placeholders become empty. Objects and lists are rendered value by
    value, into new containers each time."""

    def render(self, state: MemberState, at: float) -> Any:
        raise NotImplementedError


class Constant(Template):
    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, state: MemberState, at: float) -> Any:
        return self.value


class Text(Template):
    """Literal pieces with a placeholder between each two."""

    def __init__(self, literals: list[str], reads: list[Fact]) -> None:
        self.first = literals[0]
        self.rest = tuple(zip(reads, literals[1:]))

    def render(self, state: MemberState, at: float) -> Any:
        out = self.first
        for read, literal in self.rest:
            found = read.read(state, at)
            out = f"{out}{literal}" if found is None else f"{out}{found}{literal}"
        return out


class Mapping(Template):
    def __init__(self, items: list[tuple[Any, Template]]) -> None:
        self.items = items

    def render(self, state: MemberState, at: float) -> Any:
        return {k: value.render(state, at) for k, value in self.items}


class Sequence(Template):
    def __init__(self, parts: list[Template]) -> None:
        self.parts = parts

    def render(self, state: MemberState, at: float) -> Any:
        return [part.render(state, at) for part in self.parts]


class Unknown(Fact):
    """A placeholder naming no member field: it renders empty."""

    def read(self, state: MemberState, at: float) -> Any:
        return None


def template(value: Any) -> Template:
    if isinstance(value, dict):
        return Mapping([(k, template(v)) for k, v in value.items()])
    if isinstance(value, list):
        return Sequence([template(v) for v in value])
    literals: list[str] = []
    reads: list[Fact] = []
    last = 0
    for match in PLACEHOLDER.finditer(value) if isinstance(value, str) else ():
        literals.append(value[last:match.start()])
        reads.append(_placeholder(match.group(1), match.group(2)))
        last = match.end()
    if not reads:
        return Constant(value)
    literals.append(value[last:])
    return Text(literals, reads)


def _placeholder(name: str, sub: str | None) -> Fact:
    if sub:
        return Entry("profile", sub, None) if name == "profile" else Unknown()
    return MEMBER_FIELDS.get(name) or Unknown()


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
    done = []
    for action in scenario.steps:
        name = action.run(ctx, payload)
        if name:
            done.append(name)
    ctx.execution_seq += 1
    ctx.effects.append(tuple.__new__(Execution, (
        f"{ctx.event.id}:X{ctx.execution_seq}", scenario.id, state.id, ctx.at, trigger,
        ctx.event.id, tuple(done), depth)))
    chained = scenario.chained
    if chained not in ctx.program.scenarios_by_trigger or state.status != "active":
        return
    if depth + 1 > ctx.settings.chain_depth:
        ctx.effects.append(ChainCut(scenario.id, depth + 1, ctx.event.id))
        return
    fire(ctx, chained, payload, depth + 1)


# -- actions, compiled once per scenario into objects ``action.run(ctx, payload) -> type name``

def compile_actions(scenario_id: str, actions: tuple[dict, ...]) -> tuple[Action, ...]:
    """The scenario's actions with their parameters parsed (the documents are validated data;
    nothing in them is evaluated)."""
    return tuple(ACTIONS[action["type"]](scenario_id, action) for action in actions)


class Action:
    """One action of a scenario. ``run`` returns the action's type name, or "" when it had
    nothing to act on. Actions are small classes rather than closures: a method call on a
    compiled class is a direct call under mypyc."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario

    def run(self, ctx: Context, payload: dict) -> str:
        raise NotImplementedError


class PointsAdd(Action):
    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)
        self.points = int(action["points"])

    def run(self, ctx: Context, payload: dict) -> str:
        credit(ctx, "award", self.points, self.scenario)
        return "points.add"


class PointsMultiply(Action):
    """A bonus on the standard points of the triggering addition (none on other triggers)."""

    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)
        self.percent = float(action["percent"])

    def run(self, ctx: Context, payload: dict) -> str:
        base = payload.get("standard_points")
        if not base:
            return ""
        bonus = round_points(base * self.percent / 100.0, ctx.settings.rounding)
        standard_bonus(ctx, bonus, payload.get("transaction"), self.scenario)
        return "points.multiply"


class PointsSubtract(Action):
    """A fixed number of points, or a percentage of the balance (rounded down)."""

    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)
        self.points = int(action.get("points") or 0)
        self.percent = float(action.get("percent") or 0)

    def run(self, ctx: Context, payload: dict) -> str:
        points = self.points or round_points(ctx.state.balance * self.percent / 100.0, "floor")
        debit(ctx, "deduct", points, self.scenario)
        return "points.subtract"


class RewardIssue(Action):
    """A reward (reserved as a gift) or a code from a promo pool."""

    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)
        self.reward: str | None = action.get("reward")
        self.pool: str = action.get("pool") or ""

    def run(self, ctx: Context, payload: dict) -> str:
        request = ctx.next_id("R")
        suffix = request.rpartition(":")[2]
        state = ctx.state
        reward = self.reward
        if reward is not None:
            state.orders = {**state.orders, request: [reward, 0, "gift"]}
            ctx.send("rewards", reward, "reward.reserve",
                     {"order": request, "reward": reward, "points": 0, "member": state.id},
                     suffix=suffix, member=state.id)
        else:
            ctx.send("pools", self.pool, "pool.issue",
                     {"request": request, "pool": self.pool, "member": state.id,
                      "scenario": self.scenario}, suffix=suffix, member=state.id)
        return "reward.issue"


class TierSet(Action):
    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)
        self.tier: str = action["tier"]

    def run(self, ctx: Context, payload: dict) -> str:
        ctx.state.tier_manual = self.tier
        ctx.dirty |= TIER
        return "tier.set"


class Tags(Action):
    """``tags.add`` or ``tags.remove`` on one tag field."""

    def __init__(self, scenario: str, action: dict, add: bool) -> None:
        super().__init__(scenario)
        self.add = add
        self.name = "tags.add" if add else "tags.remove"
        self.field: str = action["field"]
        self.tags = frozenset(action["tags"])

    def run(self, ctx: Context, payload: dict) -> str:
        state = ctx.state
        field = self.field
        current = set(state.tags.get(field, ()))
        updated = current | self.tags if self.add else current - self.tags
        if updated != current:
            tags = {k: v for k, v in state.tags.items() if k != field}
            if updated:
                tags[field] = sorted(updated)
            state.tags = tags
            ctx.dirty |= ctx.program.field_bits.get(f"tags.{field}", 0)
        return self.name


class SendMessage(Action):
    """A message to the member (or to a staff user) on one channel, from templates."""

    def __init__(self, scenario: str, action: dict, channel: str, name: str) -> None:
        super().__init__(scenario)
        self.channel = channel
        self.name = name
        self.subject = template(action.get("subject"))
        self.body = template(action.get("body", ""))
        self.title = template(action.get("title"))
        self.target = template(action.get("target"))
        self.user: str | None = action.get("user")

    def run(self, ctx: Context, payload: dict) -> str:
        state = ctx.state
        ctx.message_seq += 1
        ctx.effects.append(tuple.__new__(Message, (
            f"{ctx.event.id}:M{ctx.message_seq}", state.id, ctx.at, self.channel,
            self.subject.render(state, ctx.at), self.body.render(state, ctx.at),
            self.title.render(state, ctx.at), self.target.render(state, ctx.at),
            self.user, self.scenario, "queued", state.brand)))
        return self.name


class CallWebhook(Action):
    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)
        self.url: str = action["url"]
        self.method: str = action.get("method", "POST")
        self.body = template(action.get("body"))

    def run(self, ctx: Context, payload: dict) -> str:
        state = ctx.state
        ctx.message_seq += 1
        ctx.effects.append(Webhook(f"{ctx.event.id}:M{ctx.message_seq}", state.id, ctx.at,
                                   self.url, self.method, self.body.render(state, ctx.at),
                                   self.scenario, state.brand))
        return "webhook"


class MemberDelete(Action):
    def __init__(self, scenario: str, action: dict) -> None:
        super().__init__(scenario)

    def run(self, ctx: Context, payload: dict) -> str:
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
    ctx.dirty |= STATUS
    ctx.timers_dirty = True


def _message(channel: str, name: str) -> Callable[[str, dict], Action]:
    return lambda scenario, action: SendMessage(scenario, action, channel, name)


ACTIONS: dict[str, Callable[[str, dict], Action]] = {
    "points.add": PointsAdd, "points.multiply": PointsMultiply,
    "points.subtract": PointsSubtract, "reward.issue": RewardIssue, "tier.set": TierSet,
    "tags.add": lambda scenario, action: Tags(scenario, action, True),
    "tags.remove": lambda scenario, action: Tags(scenario, action, False),
    "message.email": _message("email", "message.email"),
    "message.sms": _message("sms", "message.sms"),
    "message.internal": _message("internal", "message.internal"),
    "message.push": _message("push", "message.push"),
    "staff.email": _message("staff_email", "staff.email"), "webhook": CallWebhook,
    "member.delete": MemberDelete,
}
