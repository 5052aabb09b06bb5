"""Micro-benchmark of ``engine.apply`` on one core: a seeded, realistic event mix.

Mix: ~70% purchases with line items, 12% visits, 10% web activity, 3% joins (a third with a
referrer), 3% returns, 2% manual points; members drawn from a Zipf distribution (a few heavy
shoppers, a long tail). The program has 20 scenarios, 8 segments and 4 tiers.

Three figures: ``apply`` alone (states kept as objects in a dict), the same with the garbage
collector paused, and ``apply`` with the ``to_bytes`` / ``from_bytes`` round-trip per event that
the member agent does against its table. Events are parsed before timing (parsing happens at the
API or the agent's intake). Time is the process's CPU time, so other work on a shared machine
does not skew the figure. After the warm-up the heap is frozen (``gc.freeze``): with every
member's state held as objects, Python's full collections would otherwise rescan them all, a
cost of this harness — the agent holds states as bytes — not of ``apply``. The states created
while timing are not frozen, though: members joining and growing keep the collector running
over them (about a fifth of the time), which is why the figure with the collector paused is
given too. ``apply`` itself leaves no cyclic garbage: the round-trip, whose states
are bytes, runs no collection (the collections of each run are printed).

The engine is the compiled one when ``make native`` built it for the current sources, else the
Python sources (``TILLSTREAM_ENGINE=python`` forces them); the first line says which.

Run: ``.venv/bin/python -m bench.engine_apply [--events N] [--members N] [--profile]``.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import gc
import itertools
import pstats
import random
import time

import engine.apply
from engine.apply import apply
from engine.events import Event, iso, parse_event
from engine.program import compile_program
from engine.schema import parse_time
from engine.state import MemberState

START = parse_time("2026-03-01T08:00:00Z")

PROGRAM = {
    "program": {"default": {"points_per_unit": 1.0, "visit_points": 5, "expiry_days": 365,
                            "pending_days": 0, "streak_period": "day",
                            "referral": {"qualify": {"spend": 200}}}},
    "tiers": {
        "bronze": {"name": "Bronze", "rank": 1, "metric": "spend_365d", "min": 0},
        "silver": {"name": "Silver", "rank": 2, "metric": "spend_365d", "min": 500,
                   "points_per_unit": 1.2},
        "gold": {"name": "Gold", "rank": 3, "metric": "spend_365d", "min": 2000,
                 "points_per_unit": 1.5, "discount": 5},
        "platinum": {"name": "Platinum", "rank": 4, "metric": "spend_365d", "min": 10000,
                     "points_per_unit": 2.0, "discount": 10}},
    "segments": {
        "vip": {"name": "VIP", "rule": {"all": [
            {"field": "balance", "op": ">=", "value": 500},
            {"not": {"field": "tags.flags", "op": "contains", "value": "staff"}}]}},
        "big-spenders": {"name": "Big spenders", "rule": {
            "field": "spend_total", "op": ">=", "value": 1000}},
        "frequent": {"name": "Frequent", "rule": {"field": "purchases_total", "op": ">=",
                                                  "value": 10}},
        "newsletter": {"name": "Newsletter", "rule": {
            "field": "consents.newsletter", "op": "==", "value": "granted"}},
        "warsaw": {"name": "Warsaw", "rule": {"field": "profile.city", "op": "in",
                                              "value": ["Warsaw", "Warszawa"]}},
        "gold-plus": {"name": "Gold+", "rule": {"field": "tier", "op": "in",
                                                "value": ["gold", "platinum"]}},
        "streakers": {"name": "Streakers", "rule": {"field": "streak", "op": ">=", "value": 3}},
        "engaged": {"name": "Engaged", "rule": {"any": [
            {"field": "tags.interests", "op": "exists"},
            {"field": "balance", "op": ">", "value": 2000}]}}},
    "triggers": {
        "three-visits": {"type": "visits_in_row", "count": 3},
        "vip-in": {"type": "segment_entered", "segment": "vip"},
        "vip-out": {"type": "segment_left", "segment": "vip"},
        "phone": {"type": "profile_edited", "fields": ["phone"]},
        "inactive": {"type": "inactivity", "days": 730},
        "birthday": {"type": "birthday", "hour": 9},
        "rich": {"type": "balance_exceeded", "points": 5000},
        "to-gold": {"type": "tier_changed", "to": "gold"},
        "newsletter-yes": {"type": "consent_granted", "consent": "newsletter"},
        "frequent-in": {"type": "segment_entered", "segment": "frequent"}},
    "rewards": {"mug": {"name": "Mug", "kind": "physical", "points": 300, "stock": 1000}},
    "pools": {"welcome": {"name": "Welcome codes", "kind": "multi_use", "code": "HELLO10"}},
}


def _scenarios() -> dict:
    def s(name: str, trigger: str, *actions: dict, **extra) -> dict:
        return {"name": name, "trigger": trigger, "actions": list(actions), **extra}
    email = {"type": "message.email", "subject": "Hi", "body": "Hi {{member.profile.name}}"}
    return {
        "welcome": s("Welcome", "member.joined", {"type": "points.add", "points": 50}, email),
        "welcome-code": s("Welcome code", "scenario:welcome", {"type": "reward.issue",
                                                               "pool": "welcome"}),
        "referred": s("Referred", "referral.registered", {"type": "points.add", "points": 10}),
        "referrer": s("Referrer", "referral.made", {"type": "points.add", "points": 10}),
        "qualified": s("Qualified", "referral.qualified", {"type": "points.add", "points": 20}),
        "march-double": s("Double points in March", "points.standard_added",
                          {"type": "points.multiply", "percent": 100},
                          window={"from": "2026-03-01T00:00:00Z",
                                  "to": "2026-04-01T00:00:00Z"}),
        "gold-bonus": s("Gold bonus", "points.standard_added",
                        {"type": "points.multiply", "percent": 10}, tiers=["gold", "platinum"]),
        "streak": s("3 in a row", "three-visits", {"type": "points.add", "points": 30},
                    {"type": "message.internal", "body": "Thanks {{member.id}}!"}),
        "vip-hello": s("Hello VIP", "vip-in", email, {"type": "tags.add", "field": "flags",
                                                       "tags": ["vip"]}),
        "vip-bye": s("Bye VIP", "vip-out", {"type": "tags.remove", "field": "flags",
                                             "tags": ["vip"]}),
        "confirm-phone": s("Confirm phone", "phone", email),
        "delete-inactive": s("Delete", "inactive", {"type": "member.delete"}),
        "birthday": s("Birthday", "birthday", {"type": "points.add", "points": 100}),
        "rich": s("Rich", "rich", {"type": "message.push", "title": "Wow",
                                   "body": "{{member.balance}} points", "target": "/rewards"}),
        "gold-welcome": s("Gold", "to-gold", email, {"type": "staff.email", "user": "crm",
                                                      "body": "{{member.id}} is gold"}),
        "newsletter": s("Newsletter", "newsletter-yes", {"type": "points.add", "points": 5}),
        "frequent": s("Frequent", "frequent-in", {"type": "webhook",
                                                  "url": "https://crm.example.com/hook",
                                                  "method": "POST",
                                                  "body": {"member": "{{member.id}}"}}),
        "review": s("Review", "review.approved", {"type": "points.add", "points": 15},
                    limit_per_member=3),
        "spend-note": s("Spent", "points.standard_subtracted",
                        {"type": "message.sms", "body": "You spent points"}),
        "first-activation": s("Activated", "member.activated",
                              {"type": "points.add", "points": 25}, limit_per_member=1),
    }


PROGRAM["scenarios"] = _scenarios()
ACTIONS = ("page_view", "newsletter_open", "like", "article_read", "form_submit")
CITIES = ("Warsaw", "Gdańsk", "Kraków", "Poznań", "Wrocław")


class Generator:
    """A seeded stream of event documents over Zipf-distributed members."""

    def __init__(self, members: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.members = [f"M{i}" for i in range(members)]
        self.cumulative = list(itertools.accumulate(1.0 / (i + 1) ** 1.1
                                                    for i in range(members)))
        self.purchases: dict[str, list[tuple[str, float]]] = {}
        self.seq = 0
        self.clock = START
        self.joined = members

    def member(self) -> str:
        pick = self.rng.random() * self.cumulative[-1]
        return self.members[bisect.bisect_left(self.cumulative, pick)]

    def joins(self) -> list[dict]:
        """One join per member of the population (the warm-up, not timed)."""
        return [self._doc("member.joined", m, self._profile()) for m in self.members]

    def _profile(self, **extra) -> dict:
        rng = self.rng
        return {"profile": {"name": f"N{rng.randrange(1000)}", "city": rng.choice(CITIES),
                            "email": f"u{rng.randrange(10**9)}@example.com"},
                "channel": "pos", **extra}

    def _doc(self, type_: str, member: str, data: dict) -> dict:
        self.seq += 1
        self.clock += 0.5
        return {"id": f"e{self.seq}", "type": type_, "member": member,
                "time": self.clock, "brand": "default", "data": data}

    def next(self) -> dict:
        rng = self.rng
        roll = rng.random()
        if roll < 0.70:
            member = self.member()
            items = [{"sku": f"SKU{rng.randrange(5000)}", "category": f"C{rng.randrange(40)}",
                      "qty": rng.randint(1, 3), "price": round(rng.uniform(2, 80), 2)}
                     for _ in range(rng.randint(1, 6))]
            amount = round(sum(i["qty"] * i["price"] for i in items), 2)
            tx = f"tx{self.seq}"
            self.purchases.setdefault(member, []).append((tx, amount))
            return self._doc("purchase", member, {
                "transaction": tx, "amount": amount, "currency": "PLN",
                "store": f"S{rng.randrange(50)}", "till": f"T{rng.randrange(400)}",
                "items": items})
        if roll < 0.82:
            return self._doc("visit", self.member(), {"store": f"S{rng.randrange(50)}"})
        if roll < 0.92:
            return self._doc("web.activity", self.member(), {"action": rng.choice(ACTIONS)})
        if roll < 0.95:
            member = f"M{self.joined}"
            self.joined += 1
            extra = {"referrer": self.member()} if rng.random() < 1 / 3 else {}
            return self._doc("member.joined", member, self._profile(**extra))
        if roll < 0.98:
            member = self.member()
            bought = self.purchases.get(member)
            if not bought:
                return self._doc("visit", member, {"store": "S0"})
            tx, amount = bought.pop(rng.randrange(len(bought)))
            return self._doc("return", member, {"transaction": tx,
                                                "amount": round(amount * rng.choice(
                                                    (0.25, 0.5, 1.0)), 2)})
        kind = "points.added" if rng.random() < 0.7 else "points.subtracted"
        return self._doc(kind, self.member(), {"points": rng.randint(1, 50),
                                               "reason": "service desk"})


def _events(documents: list[dict]) -> list[Event]:
    for document in documents:
        document["time"] = iso(document["time"])
    return [parse_event(d, START) for d in documents]


def run_objects(states: dict, events: list[Event], program) -> int:
    """Apply with states kept as objects; returns the number of effects."""
    count = 0
    get = states.get
    for event in events:
        result = apply(get(event.member), event, program, event.time)
        if result.state is not None:
            states[event.member] = result.state
        count += len(result.effects)
    return count


def run_bytes(states: dict, events: list[Event], program) -> int:
    """Apply with a to_bytes / from_bytes round-trip per event, as the member agent does."""
    count = 0
    get = states.get
    load = MemberState.from_bytes
    for event in events:
        raw = get(event.member)
        result = apply(None if raw is None else load(raw), event, program, event.time)
        if result.state is not None:
            states[event.member] = result.state.to_bytes()
        count += len(result.effects)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of apply")
    args = parser.parse_args()

    program = compile_program(PROGRAM)
    generator = Generator(args.members, args.seed)
    warmup = _events(generator.joins())
    events = _events([generator.next() for _ in range(args.events)])
    mix: dict[str, int] = {}
    for event in events:
        mix[event.type] = mix.get(event.type, 0) + 1
    print(f"{len(events)} events over {args.members} members (+{len(warmup)} joins warm-up); "
          + ", ".join(f"{k} {v / len(events):.0%}" for k, v in sorted(mix.items())))
    print(f"program: {len(program.scenarios)} scenarios, {len(program.segments)} segments, "
          f"{len(program.tiers)} tiers; engine: "
          + ("Python sources" if engine.apply.__file__.endswith(".py") else "compiled (mypyc)"))

    for name, runner, collect in (("apply", run_objects, True),
                                  ("apply, collector paused", run_objects, False),
                                  ("apply + bytes round-trip", run_bytes, True)):
        states: dict = {}
        runner(states, warmup, program)
        gc.collect()
        gc.freeze()
        if not collect:
            gc.disable()
        collections = sum(generation["collections"] for generation in gc.get_stats())
        profile = args.profile and name == "apply"
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
        began = time.process_time()
        effects = runner(states, events, program)
        elapsed = time.process_time() - began
        if profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        collections = sum(generation["collections"] for generation in gc.get_stats()) - collections
        print(f"{name:>26}: {len(events) / elapsed:>9,.0f} events per CPU second "
              f"({elapsed:.2f} s, {effects / len(events):.2f} effects/event, "
              f"{collections} collections)")
        gc.enable()
        gc.unfreeze()


if __name__ == "__main__":
    main()
