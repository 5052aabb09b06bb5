"""The program configuration: settings, tiers, segments, triggers, scenarios, rewards, promo
pools, collective goals and the contact blacklist — their declared shapes, their validation
(every problem named) and their compilation into an indexed :class:`Program`.

Every object but the settings and the blacklist takes an optional ``brands`` list (empty =
every brand). Settings are per brand: ``"default"`` is the base and a brand's own settings
override it field by field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from engine.rules import TIME_DEPENDENT, Fact, Rule, compile_rule, fact, validate_rule
from engine.schema import Problem, check, instant, join, parse_time, tagged_union
from engine.state import FACT_BITS, FIELD_BITS_FROM

if TYPE_CHECKING:  # the actions module builds on the program's own types
    from engine.scenarios import Action

SYSTEM_TRIGGERS = ("member.joined", "points.standard_added", "points.standard_subtracted",
                   "reward.digital_issued", "reward.physical_issued", "reward.physical_shipped",
                   "member.activated", "referral.made", "referral.registered",
                   "referral.qualified", "review.approved", "web.activity")
TIER_METRICS = ("spend_total", "spend_365d", "points_earned_total", "points_earned_365d")

NAME = {"type": "string", "minLength": 1, "maxLength": 200}
ID = {"type": "string", "minLength": 1, "maxLength": 200}
IDS = {"type": "array", "items": ID}
TEXT = {"type": "string", "maxLength": 10_000}
BRANDS = {"type": "array", "items": ID}
HOUR = {"type": "integer", "minimum": 0, "maximum": 23}

DEFAULT_SETTINGS: dict[str, Any] = {
    "points_per_unit": 1.0, "rounding": "floor", "visit_points": 0, "expiry_days": None,
    "pending_days": 0, "streak_period": "day", "referral": {"qualify": {"spend": 100}},
    "chain_depth": 5, "timezone": "UTC"}

SCHEMAS: dict[str, dict] = {
    "settings": {"type": "object", "additionalProperties": False, "properties": {
        "points_per_unit": {"type": "number", "minimum": 0},
        "rounding": {"type": "string", "enum": ["floor", "round", "ceil"]},
        "visit_points": {"type": "integer", "minimum": 0},
        "expiry_days": {"type": ["integer", "null"], "minimum": 1},
        "pending_days": {"type": "integer", "minimum": 0, "maximum": 365},
        "streak_period": {"type": "string", "enum": ["day", "week", "month"]},
        "referral": {"type": "object", "additionalProperties": False, "properties": {
            "qualify": {"type": "object", "additionalProperties": False,
                        "minProperties": 1, "maxProperties": 1,
                        "x-count-problem": "give exactly one of spend, points", "properties": {
                "spend": {"type": "number", "exclusiveMinimum": 0},
                "points": {"type": "integer", "exclusiveMinimum": 0}}}}},
        "chain_depth": {"type": "integer", "minimum": 1, "maximum": 20},
        "timezone": {"type": "string", "minLength": 1}}},
    "tiers": {"type": "object", "required": ["name", "rank", "metric", "min"],
              "additionalProperties": False, "properties": {
                  "name": NAME, "rank": {"type": "integer", "minimum": 0},
                  "metric": {"type": "string", "enum": list(TIER_METRICS)},
                  "min": {"type": "number", "minimum": 0},
                  "points_per_unit": {"type": ["number", "null"], "minimum": 0},
                  "discount": {"type": "number", "minimum": 0, "maximum": 100},
                  "brands": BRANDS}},
    "segments": {"type": "object", "required": ["name", "rule"], "additionalProperties": False,
                 "properties": {"name": NAME, "rule": {"type": "object"}, "brands": BRANDS}},
    "triggers": tagged_union("type", {
        name: {"additionalProperties": False,
               "properties": {"name": NAME, "brands": BRANDS, **params},
               "required": required}
        for name, params, required in (
            ("on_demand", {}, []),
            ("date", {"at": {"type": "string", "format": "date-time"},
                      "day": {"type": "integer", "minimum": 1, "maximum": 31},
                      "months": {"type": "array", "minItems": 1, "items": {
                          "type": "integer", "minimum": 1, "maximum": 12}},
                      "hour": HOUR}, []),
            ("inactivity", {"days": {"type": "integer", "minimum": 1}}, ["days"]),
            ("balance_exceeded", {"points": {"type": "integer", "exclusiveMinimum": 0}},
             ["points"]),
            ("birthday", {"hour": HOUR}, []),
            ("profile_completed", {"fields": {**IDS, "minItems": 1}}, ["fields"]),
            ("profile_edited", {"fields": {**IDS, "minItems": 1}}, ["fields"]),
            ("tier_changed", {"from": {"type": ["string", "null"]},
                              "to": {"type": ["string", "null"]}}, []),
            ("consent_granted", {"consent": ID}, ["consent"]),
            ("segment_entered", {"segment": ID}, ["segment"]),
            ("segment_left", {"segment": ID}, ["segment"]),
            ("reward_ordered", {"reward": ID}, ["reward"]),
            ("visits_in_row", {"count": {"type": "integer", "minimum": 1}}, ["count"]),
            ("goal_reached", {"goal": ID}, ["goal"]),
            ("goal_donated", {"goal": ID}, ["goal"]),
            ("quiz_solved", {"quiz": ID}, ["quiz"]))}),
    "rewards": {"type": "object", "required": ["name", "kind", "points"],
                "additionalProperties": False, "properties": {
                    "name": NAME, "kind": {"type": "string", "enum": ["digital", "physical"]},
                    "points": {"type": "integer", "minimum": 0},
                    "stock": {"type": ["integer", "null"], "minimum": 0}, "brands": BRANDS}},
    "pools": {"type": "object", "required": ["name", "kind"], "additionalProperties": False,
              "properties": {"name": NAME,
                             "kind": {"type": "string", "enum": ["single_use", "multi_use"]},
                             "code": ID, "codes": {"type": "array", "items": ID,
                                                   "maxItems": 100_000},
                             "brands": BRANDS}},
    "goals": {"type": "object", "required": ["name", "points"], "additionalProperties": False,
              "properties": {"name": NAME, "points": {"type": "integer", "exclusiveMinimum": 0},
                             "brands": BRANDS}},
    "blacklist": {"type": "object", "additionalProperties": False, "properties": {
        "phones": {"type": "array", "items": ID, "maxItems": 1_000_000},
        "emails": {"type": "array", "items": ID, "maxItems": 1_000_000}}},
}

_TEXT_ACTION = {"body": TEXT}
ACTION_SCHEMA = tagged_union("type", {
    name: {"additionalProperties": False, "properties": props, "required": required}
    for name, props, required in (
        ("points.add", {"points": {"type": "integer", "exclusiveMinimum": 0}}, ["points"]),
        ("points.multiply", {"percent": {"type": "number", "exclusiveMinimum": 0,
                                         "maximum": 10_000}}, ["percent"]),
        ("points.subtract", {"points": {"type": "integer", "exclusiveMinimum": 0},
                             "percent": {"type": "number", "exclusiveMinimum": 0,
                                         "maximum": 100}}, []),
        ("reward.issue", {"reward": ID, "pool": ID}, []),
        ("tier.set", {"tier": ID}, ["tier"]),
        ("tags.add", {"field": ID, "tags": {**IDS, "minItems": 1}}, ["field", "tags"]),
        ("tags.remove", {"field": ID, "tags": {**IDS, "minItems": 1}}, ["field", "tags"]),
        ("message.email", {"subject": TEXT, **_TEXT_ACTION}, ["subject", "body"]),
        ("message.sms", _TEXT_ACTION, ["body"]),
        ("message.internal", _TEXT_ACTION, ["body"]),
        ("message.push", {"title": TEXT, "body": TEXT, "target": TEXT}, ["title", "body"]),
        ("staff.email", {"user": ID, "subject": TEXT, "body": TEXT}, ["user", "body"]),
        ("webhook", {"url": {"type": "string", "minLength": 8, "maxLength": 2000,
                             "pattern": "^https?://.+$",
                             "x-pattern-problem": "must be an http(s) URL"},
                     "method": {"type": "string",
                                "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
                     "body": {}}, ["url"]),
        ("member.delete", {}, []))})

for _branch in ACTION_SCHEMA["oneOf"]:
    _choices = {"points.subtract": "points, percent", "reward.issue": "reward, pool"}.get(
        _branch["properties"]["type"]["const"])
    if _choices:
        _branch.update(minProperties=2, maxProperties=2,
                       **{"x-count-problem": f"give exactly one of {_choices}"})

SCHEMAS["scenarios"] = {
    "type": "object", "required": ["name", "trigger", "actions"], "additionalProperties": False,
    "properties": {
        "name": NAME, "active": {"type": "boolean"}, "trigger": ID,
        "tiers": IDS, "segments": IDS,
        "window": {"type": "object", "additionalProperties": False, "properties": {
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"}}},
        "limit_per_member": {"type": ["integer", "null"], "minimum": 1},
        "actions": {"type": "array", "minItems": 1, "maxItems": 50, "items": ACTION_SCHEMA},
        "brands": BRANDS}}


def json_schema(kind: str) -> dict:
    """The JSON Schema of a configuration kind (settings, tiers, segments, triggers,
    scenarios, rewards, pools, goals, blacklist)."""
    return SCHEMAS[kind]


# -- validation ----------------------------------------------------------------------------

def validate_settings(doc: Any) -> list[Problem]:
    problems = check(SCHEMAS["settings"], doc)
    zone = doc.get("timezone") if isinstance(doc, dict) else None
    if isinstance(zone, str) and zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
            problems.append({"field": "timezone", "problem": f"unknown time zone {zone!r}"})
    return problems


def validate_tier(doc: Any) -> list[Problem]:
    return check(SCHEMAS["tiers"], doc)


def validate_segment(doc: Any) -> list[Problem]:
    problems = check(SCHEMAS["segments"], doc)
    if isinstance(doc, dict) and isinstance(doc.get("rule"), dict):
        problems += validate_rule(doc["rule"])
    return problems


def validate_trigger(doc: Any, program: "Program | None" = None) -> list[Problem]:
    problems = check(SCHEMAS["triggers"], doc)
    if problems:
        return problems
    if doc["type"] == "date":
        yearly = [k for k in ("day", "months") if k in doc]
        if ("at" in doc) == bool(yearly) or (yearly and len(yearly) != 2):
            problems.append({"field": "at", "problem": "give either at (one-off) or day and "
                                                       "months (yearly)"})
    if program is not None:
        for key, kind in (("segment", "segments"), ("reward", "rewards"), ("goal", "goals"),
                          ("from", "tiers"), ("to", "tiers")):
            value = doc.get(key)
            if value is not None and value not in program.known(kind):
                problems.append({"field": key, "problem": f"unknown {kind[:-1]} {value!r}"})
    return problems


def validate_scenario(doc: Any, program: "Program | None" = None) -> list[Problem]:
    problems = check(SCHEMAS["scenarios"], doc)
    if not isinstance(doc, dict):
        return problems
    window: dict = doc["window"] if isinstance(doc.get("window"), dict) else {}
    start, end = parse_time(window.get("from", "")), parse_time(window.get("to", ""))
    if start is not None and end is not None and end <= start:
        problems.append({"field": "window.to", "problem": "must be after window.from"})
    actions = doc.get("actions")
    for index, action in enumerate(actions if isinstance(actions, list) else []):
        if not isinstance(action, dict):
            continue
        path = join("actions", index)
        if program is not None:
            for key, known in (("tier", "tiers"), ("reward", "rewards"), ("pool", "pools")):
                value = action.get(key)
                if isinstance(value, str) and value not in program.known(known):
                    problems.append({"field": join(path, key),
                                     "problem": f"unknown {known[:-1]} {value!r}"})
    if program is not None:
        trigger = doc.get("trigger")
        if isinstance(trigger, str) and not program.trigger_exists(trigger):
            problems.append({"field": "trigger", "problem": f"unknown trigger {trigger!r}: a "
                             f"system trigger, a configured trigger id or scenario:<id>"})
        for key, kind in (("tiers", "tiers"), ("segments", "segments")):
            listed = doc.get(key)       # not a list: already a problem of the schema's
            for index, value in enumerate(listed if isinstance(listed, list) else []):
                if isinstance(value, str) and value not in program.known(kind):
                    problems.append({"field": join(key, index),
                                     "problem": f"unknown {kind[:-1]} {value!r}"})
    return problems


def validate_reward(doc: Any) -> list[Problem]:
    return check(SCHEMAS["rewards"], doc)


def validate_pool(doc: Any) -> list[Problem]:
    problems = check(SCHEMAS["pools"], doc)
    if not problems and doc["kind"] == "multi_use" and "code" not in doc:
        problems.append({"field": "code", "problem": "is required for a multi_use pool"})
    return problems


def validate_goal(doc: Any) -> list[Problem]:
    return check(SCHEMAS["goals"], doc)


def validate_blacklist(doc: Any) -> list[Problem]:
    return check(SCHEMAS["blacklist"], doc)


# -- the compiled program ------------------------------------------------------------------

def _integer(value: Any) -> int | None:
    """An optional integer of a document (JSON Schema counts 3.0 as one; compiled, the
    program's ``int`` fields take only ints)."""
    return None if value is None else int(value)


def _brands(doc: dict) -> frozenset[str]:
    return frozenset(doc.get("brands") or ())


@dataclass(frozen=True, slots=True)
class Settings:
    points_per_unit: float
    rounding: str
    visit_points: int
    expiry_days: int | None
    pending_days: int
    streak_period: str
    qualify_spend: float | None
    qualify_points: int | None
    chain_depth: int
    timezone: ZoneInfo

    @classmethod
    def from_doc(cls, doc: dict) -> "Settings":
        qualify = (doc.get("referral") or {}).get("qualify") or {}
        return cls(points_per_unit=float(doc["points_per_unit"]), rounding=doc["rounding"],
                   visit_points=int(doc["visit_points"]),
                   expiry_days=_integer(doc["expiry_days"]),
                   pending_days=int(doc["pending_days"]), streak_period=doc["streak_period"],
                   qualify_spend=qualify.get("spend"),
                   qualify_points=_integer(qualify.get("points")),
                   chain_depth=int(doc["chain_depth"]), timezone=ZoneInfo(doc["timezone"]))


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    name: str
    rank: int
    metric: str
    min: float
    points_per_unit: float | None
    discount: float
    brands: frozenset[str]
    measure: Fact                              # reads the metric from a member state at a time


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    name: str
    rule: Rule
    fields: frozenset[str]
    brands: frozenset[str]
    mask: int                                  # the dirty-fact bits of the fields it reads


@dataclass(frozen=True, slots=True)
class Trigger:
    id: str
    type: str
    params: dict
    brands: frozenset[str]


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    name: str
    active: bool
    trigger: str
    tiers: frozenset[str]
    segments: frozenset[str]
    window_from: float                         # -inf when open
    window_to: float                           # +inf when open
    limit_per_member: int | None
    actions: tuple[dict, ...]
    brands: frozenset[str]
    chained: str                               # the trigger this scenario is: scenario:<id>
    steps: tuple[Action, ...]                  # the actions, compiled (engine/scenarios.py)


def in_brand(obj: Any, brand: str) -> bool:
    return not obj.brands or brand in obj.brands


@dataclass(slots=True)
class Program:
    """A compiled, indexed configuration; rebuilt whenever an admin change arrives."""

    settings_by_brand: dict[str, Settings]
    tiers: tuple[Tier, ...]                   # highest rank first
    segments: dict[str, Segment]
    field_bits: dict[str, int]                # fact or field -> its dirty bit (FACT_BITS, ...)
    triggers: dict[str, Trigger]
    triggers_by_type: dict[str, tuple[Trigger, ...]]
    scenarios: dict[str, Scenario]
    scenarios_by_trigger: dict[str, tuple[Scenario, ...]]
    rewards: dict[str, dict]
    pools: dict[str, dict]
    goals: dict[str, dict]
    blacklists: dict[str, tuple[frozenset[str], frozenset[str]]]
    default_settings: Settings = field(init=False)
    timer_signature: str = field(init=False)
    tier_rates: dict[str, float] = field(init=False)   # tier -> its own points_per_unit
    entered_triggers: dict[str, tuple[Trigger, ...]] = field(init=False)  # by segment
    left_triggers: dict[str, tuple[Trigger, ...]] = field(init=False)     # by segment
    _memo: dict[int, tuple[Segment, ...]] = field(init=False, default_factory=dict)
    _segment_mask: int = field(init=False)
    _tiers_by_brand: dict[str, tuple[Tier, ...]] = field(init=False)
    _unscoped_tiers: tuple[Tier, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.default_settings = self.settings_by_brand["default"]
        self.timer_signature = _timer_signature(self)
        self._segment_mask = 0
        for segment in self.segments.values():
            self._segment_mask |= segment.mask
        self.entered_triggers = _by_segment(self.triggers_by_type.get("segment_entered", ()))
        self.left_triggers = _by_segment(self.triggers_by_type.get("segment_left", ()))
        self.tier_rates = {t.id: t.points_per_unit for t in self.tiers
                           if t.points_per_unit is not None}
        self._unscoped_tiers = tuple(t for t in self.tiers if not t.brands)
        self._tiers_by_brand = {brand: tuple(t for t in self.tiers if in_brand(t, brand))
                                for brand in {b for t in self.tiers for b in t.brands}}

    def tiers_for(self, brand: str) -> tuple[Tier, ...]:
        """The brand's tiers, highest rank first (precomputed per brand that some tier names;
        every other brand shares the unscoped tiers)."""
        return self._tiers_by_brand.get(brand, self._unscoped_tiers)

    def segments_for(self, dirty: int) -> tuple[Segment, ...]:
        """The segments an event could move a member in or out of: those reading a changed
        fact (a bit of ``dirty``), and those reading facts that change with time alone; sorted
        by id, memoised per set of changed facts (events of one type change the same few)."""
        key = dirty & self._segment_mask
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = tuple(
                s for s in self.segments.values() if s.mask & key or s.fields & TIME_DEPENDENT)
        return found

    def settings(self, brand: str) -> Settings:
        return self.settings_by_brand.get(brand, self.default_settings)

    def known(self, kind: str) -> Any:
        return {"tiers": {t.id for t in self.tiers}, "segments": self.segments,
                "triggers": self.triggers, "scenarios": self.scenarios,
                "rewards": self.rewards, "pools": self.pools, "goals": self.goals}[kind]

    def trigger_exists(self, name: str) -> bool:
        if name in SYSTEM_TRIGGERS or name in self.triggers:
            return True
        return name.startswith("scenario:") and name[len("scenario:"):] in self.scenarios

    def blacklisted(self, brand: str, profile: dict) -> list[Problem]:
        phones, emails = self.blacklists.get(brand) or self.blacklists.get(
            "default", (frozenset(), frozenset()))
        problems = []
        phone, email = profile.get("phone"), profile.get("email")
        if isinstance(phone, str) and normalise_phone(phone) in phones:
            problems.append({"field": "data.profile.phone",
                             "problem": "this phone number is on the brand's blacklist"})
        if isinstance(email, str) and email.strip().lower() in emails:
            problems.append({"field": "data.profile.email",
                             "problem": "this e-mail address is on the brand's blacklist"})
        return problems


TIMED_TRIGGERS = ("inactivity", "birthday", "date")


def _by_segment(triggers: tuple[Trigger, ...]) -> dict[str, tuple[Trigger, ...]]:
    found: dict[str, list[Trigger]] = {}
    for trigger in triggers:
        found.setdefault(trigger.params["segment"], []).append(trigger)
    return {k: tuple(v) for k, v in found.items()}


def _timer_signature(program: "Program") -> str:
    """What a member's due times depend on in the configuration: a member whose due times
    were computed under another signature has them recomputed on its next event."""
    timed = [[t.id, t.type, t.params, sorted(t.brands)] for kind in TIMED_TRIGGERS
             for t in program.triggers_by_type.get(kind, ())]
    tiers = [[t.id, t.metric] for t in program.tiers]
    return orjson.dumps([timed, tiers], option=orjson.OPT_SORT_KEYS).decode()


def normalise_phone(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit() or ch == "+")


def compile_program(objects: dict[str, dict[str, Any]]) -> Program:
    """Compile the stored configuration objects (kind -> id -> document).

    Objects are validated when written; here an object that does not validate (written by an
    older version, or referencing something deleted since) is left out rather than failing
    the whole program.
    """
    base = dict(DEFAULT_SETTINGS)
    base.update((objects.get("program") or {}).get("default") or {})
    settings_by_brand = {"default": Settings.from_doc(base)}
    for brand, doc in (objects.get("program") or {}).items():
        if brand != "default" and not validate_settings(doc):
            settings_by_brand[brand] = Settings.from_doc({**base, **doc})

    tiers = sorted((Tier(id=i, name=d["name"], rank=int(d["rank"]), metric=d["metric"],
                         min=float(d["min"]), points_per_unit=d.get("points_per_unit"),
                         discount=float(d.get("discount") or 0), brands=_brands(d),
                         measure=fact(d["metric"]))
                    for i, d in (objects.get("tiers") or {}).items() if not validate_tier(d)),
                   key=lambda t: (-t.rank, t.id))

    rules = {segment_id: (doc, *compile_rule(doc["rule"]))
             for segment_id, doc in sorted((objects.get("segments") or {}).items())
             if not validate_segment(doc)}
    read: set[str] = set()
    for _, _, fields in rules.values():
        read |= fields
    field_bits = dict(FACT_BITS)
    for name in sorted(read - field_bits.keys() - TIME_DEPENDENT):
        field_bits[name] = FIELD_BITS_FROM << (len(field_bits) - len(FACT_BITS))
    segments = {}
    for segment_id, (doc, rule, fields) in rules.items():
        mask = 0
        for name in fields:
            mask |= field_bits.get(name, 0)
        segments[segment_id] = Segment(segment_id, doc["name"], rule, fields,
                                       _brands(doc), mask)

    triggers = {i: Trigger(i, d["type"], {k: v for k, v in d.items()
                                           if k not in ("type", "brands", "name")},
                           _brands(d))
                for i, d in sorted((objects.get("triggers") or {}).items())
                if not validate_trigger(d)}
    by_type: dict[str, list[Trigger]] = {}
    for trigger in triggers.values():
        by_type.setdefault(trigger.type, []).append(trigger)

    rewards = {i: d for i, d in (objects.get("rewards") or {}).items() if not validate_reward(d)}
    pools = {i: d for i, d in (objects.get("pools") or {}).items() if not validate_pool(d)}
    goals = {i: d for i, d in (objects.get("goals") or {}).items() if not validate_goal(d)}
    blacklists = {brand: (frozenset(normalise_phone(p) for p in d.get("phones") or ()),
                          frozenset(e.strip().lower() for e in d.get("emails") or ()))
                  for brand, d in (objects.get("blacklist") or {}).items()
                  if not validate_blacklist(d)}

    program = Program(settings_by_brand=settings_by_brand, tiers=tuple(tiers),
                      segments=segments, field_bits=field_bits, triggers=triggers,
                      triggers_by_type={k: tuple(v) for k, v in by_type.items()},
                      scenarios={}, scenarios_by_trigger={}, rewards=rewards, pools=pools,
                      goals=goals, blacklists=blacklists)
    # Imported here: the actions module builds on the program's own types.
    from engine.scenarios import compile_actions
    raw_scenarios = objects.get("scenarios") or {}
    # The ids alone while the scenarios are validated (a trigger may be scenario:<id>).
    program.scenarios = cast(dict[str, Scenario], dict.fromkeys(raw_scenarios))
    scenarios: dict[str, Scenario] = {}
    for scenario_id, doc in sorted(raw_scenarios.items()):
        if validate_scenario(doc, program):
            continue
        window = doc.get("window") or {}
        scenarios[scenario_id] = Scenario(
            id=scenario_id, name=doc["name"], active=doc.get("active", True),
            trigger=doc["trigger"], tiers=frozenset(doc.get("tiers") or ()),
            segments=frozenset(doc.get("segments") or ()),
            window_from=instant(window["from"]) if "from" in window else -math.inf,
            window_to=instant(window["to"]) if "to" in window else math.inf,
            limit_per_member=_integer(doc.get("limit_per_member")),
            actions=tuple(doc["actions"]),
            brands=_brands(doc), chained=f"scenario:{scenario_id}",
            steps=compile_actions(scenario_id, tuple(doc["actions"])))
    by_trigger: dict[str, list[Scenario]] = {}
    for scenario in scenarios.values():
        if scenario.active:
            by_trigger.setdefault(scenario.trigger, []).append(scenario)
    program.scenarios = scenarios
    program.scenarios_by_trigger = {k: tuple(v) for k, v in by_trigger.items()}
    return program
