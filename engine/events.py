"""Input events: their declared shapes, parsing and validation (PRODUCT.md §2 "Input events").

Every event has ``id`` (the idempotency key), ``type``, ``member``, ``time`` (ISO-8601 event
time, defaulting to ingestion time; without an offset it is UTC), ``brand`` (default
``"default"``) and ``data``. The shapes below are the only declaration: the validator and the
OpenAPI document both read them.

Public types come from tills, shops and apps. Internal types are sent by Tillstream itself on
the events topic and are refused at the HTTP API (a client must not forge a referral or a
reward reservation):

- ``referral.made`` / ``referral.qualified`` [referred] — to the referrer's key;
- ``timer`` [kind] — a due time of the member's timer index has passed;
- ``trigger.fired`` [trigger] — an on-demand trigger fired through the API;
- ``reward.reserved`` / ``reward.refused`` [order, reward, reason?] — the reward-stock agent's
  answer to an order;
- ``promo.issued`` / ``promo.refused`` [request, pool, code?, reason?] — the promo-pool agent's
  answer;
- ``goal.reached`` [goal] — the collective-goal agent's news for every donor;
- ``message.status`` [message, status] — the outbox worker's delivery outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from engine.schema import Problem, check, compile_validator, instant, tagged_union

STRING = {"type": "string", "minLength": 1, "maxLength": 200}
TEXT = {"type": "string", "maxLength": 2000}
#: Amounts above a trillion are refused: no till sells that much, and points computed from
#: larger amounts would not fit the 64-bit integers the ledger is written with.
MAX_AMOUNT = 1_000_000_000_000
MONEY = {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT}
POINTS = {"type": "integer", "exclusiveMinimum": 0, "maximum": 1_000_000_000}
PROFILE = {"type": "object", "additionalProperties": {
    "type": ["string", "number", "boolean", "null"]}}
ITEM = {"type": "object", "required": ["sku", "qty", "price"], "additionalProperties": False,
        "properties": {"sku": STRING, "category": STRING,
                       "qty": {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
                       "price": MONEY}}
CONSENT_STATUSES = ("undetermined", "granted", "withdrawn")


def _data(required: tuple[str, ...] = (), **properties: dict) -> dict:
    return {"type": "object", "required": list(required), "properties": properties,
            "additionalProperties": False}


PUBLIC_DATA: dict[str, dict] = {
    "member.joined": _data(profile=PROFILE, referrer=STRING, channel=STRING, card=STRING),
    "member.activated": _data(),
    "member.profile_updated": _data(("profile",), profile=PROFILE),
    "member.consent_changed": _data(("consent", "status"), consent=STRING,
                                    status={"type": "string", "enum": list(CONSENT_STATUSES)}),
    "purchase": _data(("transaction", "amount"), transaction=STRING, amount=MONEY,
                      currency=STRING, store=STRING, till=STRING,
                      items={"type": "array", "items": ITEM, "maxItems": 500}),
    "return": _data(("transaction", "amount"), transaction=STRING,
                    amount={"type": "number", "exclusiveMinimum": 0, "maximum": MAX_AMOUNT}),
    "visit": _data(store=STRING),
    "web.activity": _data(("action",), action=STRING, url=TEXT),
    "points.added": _data(("points",), points=POINTS, reason=TEXT),
    "points.subtracted": _data(("points",), points=POINTS, reason=TEXT),
    "reward.ordered": _data(("reward",), reward=STRING),
    "reward.issued": _data(("reward",), reward=STRING),
    "reward.shipped": _data(("reward",), reward=STRING),
    "review.approved": _data(review=STRING),
    "quiz.solved": _data(("quiz",), quiz=STRING),
    "goal.donated": _data(("goal", "points"), goal=STRING, points=POINTS),
}

INTERNAL_DATA: dict[str, dict] = {
    "referral.made": _data(("referred",), referred=STRING),
    "referral.qualified": _data(("referred",), referred=STRING),
    "timer": _data(("kind",), kind=STRING),
    "trigger.fired": _data(("trigger",), trigger=STRING),
    "reward.reserved": _data(("order", "reward"), order=STRING, reward=STRING,
                             points={"type": "integer", "minimum": 0}),
    "reward.refused": _data(("order", "reward"), order=STRING, reward=STRING, reason=STRING),
    "promo.issued": _data(("request", "pool", "code"), request=STRING, pool=STRING,
                          code=STRING, scenario=STRING),
    "promo.refused": _data(("request", "pool"), request=STRING, pool=STRING, reason=STRING,
                           scenario=STRING),
    "goal.reached": _data(("goal",), goal=STRING),
    "message.status": _data(("message", "status"), message=STRING, status=STRING),
}

EVENT_TYPES = tuple(PUBLIC_DATA) + tuple(INTERNAL_DATA)


MEMBER_ID = {**STRING, "pattern": "^[^/\\x00]+$",
             "x-pattern-problem": "must not contain '/' or NUL"}
EVENT_ID = {**STRING, "pattern": "^[^\\n\\x00]+$",
            "x-pattern-problem": "must not contain a newline or NUL"}


def _envelope(data_schemas: dict[str, dict]) -> dict:
    branches = {name: {"required": ["id", "member", *(["data"] if data["required"] else [])],
                       "additionalProperties": False,
                       "properties": {"id": EVENT_ID, "member": MEMBER_ID,
                                      "time": {"type": "string", "format": "date-time"},
                                      "brand": STRING, "data": data}}
                for name, data in data_schemas.items()}
    return tagged_union("type", branches)


PUBLIC_SCHEMA = _envelope(PUBLIC_DATA)
ANY_SCHEMA = _envelope({**PUBLIC_DATA, **INTERNAL_DATA})


def event_json_schema() -> dict:
    """The JSON Schema of an event as accepted by ``POST /v1/events``."""
    return PUBLIC_SCHEMA


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    member: str
    time: float
    brand: str
    data: dict


_ANY_VALID = compile_validator(ANY_SCHEMA)
_PUBLIC_VALID = compile_validator(PUBLIC_SCHEMA)


class EventError(Exception):
    """An event that cannot be applied; ``details`` lists every bad field."""

    def __init__(self, details: list[Problem]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['problem']}" for d in details))
        self.details = details


def parse_event(document: Any, now: float, internal: bool = True) -> Event:
    """Validate one event document; ``internal=False`` (the HTTP API) refuses internal types."""
    if not (_ANY_VALID if internal else _PUBLIC_VALID)(document):
        raise EventError(check(ANY_SCHEMA if internal else PUBLIC_SCHEMA, document))
    member = document["member"]
    raw_time = document.get("time")
    return Event(id=document["id"], type=document["type"], member=member,
                 time=now if raw_time is None else instant(raw_time),
                 brand=document.get("brand") or "default", data=document.get("data") or {})


def checked_event(document: dict) -> Event:
    """An event document as :func:`to_document` wrote it after :func:`parse_event` accepted it
    (its time resolved), read back without validating it again."""
    return Event(id=document["id"], type=document["type"], member=document["member"],
                 time=instant(document["time"]), brand=document["brand"],
                 data=document["data"])


def iso(epoch: float) -> str:
    """``datetime.isoformat()`` in UTC with a ``Z``, written by orjson: the same text (RFC 3339,
    microseconds when there are any) in half the time, and every effect has a time."""
    return orjson.dumps(datetime.fromtimestamp(epoch, timezone.utc),
                        option=orjson.OPT_UTC_Z)[1:-1].decode()


def to_document(event: Event) -> dict:
    """The event as JSON, with its resolved time and brand (so a replay reads the same)."""
    return {"id": event.id, "type": event.type, "member": event.member, "time": iso(event.time),
            "brand": event.brand, "data": event.data}
