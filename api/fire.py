"""``POST /v1/triggers/{id}/fire`` and ``POST /v1/promo-pools/{id}/codes``: admin actions that
become records on topics, answered as soon as those records are durable.

Firing for a list of members sends one ``trigger.fired`` event per member. Firing for a tier or
a segment writes one fan-out request per partition (agents/fanout.py): the server never walks
an audience itself. The answer says how many members were targeted: the list's length, or the
tier's / segment's member count in the analytics aggregates at the time of the request.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import faust
import orjson
from aiohttp import web
from faust.web import Request, View

from agents.fanout import trigger_event
from api.admin import read_json_object
from api.errors import error_response, json_response
from tables.config import ConfigReplica

MAX_MEMBERS_PER_FIRE = 10_000
MAX_CODES_PER_REQUEST = 10_000


def fire_problems(body: dict, config: ConfigReplica) -> list[dict]:
    audiences = [name for name in ("members", "tier", "segment") if name in body]
    if len(audiences) != 1:
        return [{"field": "", "problem": "give exactly one of members, tier, segment"}]
    name = audiences[0]
    value = body[name]
    if name == "members":
        if not isinstance(value, list) or not value:
            return [{"field": "members", "problem": "must be a non-empty list of member ids"}]
        problems = [{"field": f"members[{i}]", "problem": "must be a non-empty string"}
                    for i, member in enumerate(value)
                    if not isinstance(member, str) or not member]
        if len(value) > MAX_MEMBERS_PER_FIRE:
            problems.append({"field": "members",
                             "problem": f"at most {MAX_MEMBERS_PER_FIRE} members; "
                                        f"use a tier or a segment for larger audiences"})
        return problems
    kind = "tiers" if name == "tier" else "segments"
    if not isinstance(value, str) or config.get(kind, value) is None:
        return [{"field": name, "problem": f"unknown {name} {value!r}"}]
    return []


def register(app: faust.App, config: ConfigReplica, events_topic: faust.TopicT,
             fanout_topic: faust.TopicT, pools_topic: faust.TopicT, clock,
             audience_size) -> None:
    """``audience_size(kind, id, authorization) -> int`` counts a tier's or segment's
    members (from the analytics aggregates) for the answer."""
    @app.page("/v1/triggers/{id}/fire")
    class FireView(View):
        async def post(self, request: Request, id: str) -> web.Response:
            trigger = config.get("triggers", id)
            if trigger is None:
                return error_response(404, "not_found", f"no trigger {id!r}")
            if trigger.get("type") != "on_demand":
                return error_response(409, "not_on_demand",
                                      f"trigger {id!r} is {trigger.get('type')!r}, "
                                      f"only on_demand triggers can be fired")
            body = await read_json_object(request)
            if isinstance(body, web.Response):
                return body
            problems = fire_problems(body, config)
            if problems:
                return error_response(400, "invalid", "invalid audience", problems)
            request_id = uuid.uuid4().hex
            now = clock.now()
            if "members" in body:
                members = list(dict.fromkeys(body["members"]))
                deliveries = [await events_topic.send(
                    key=member.encode(),
                    value=orjson.dumps(trigger_event(request_id, id, member, now)))
                    for member in members]
                await asyncio.gather(*deliveries)
                return json_response({"request": request_id, "targeted": len(members)},
                                     status=202)
            audience = {"tier": body["tier"]} if "tier" in body else {"segment": body["segment"]}
            value = orjson.dumps({"request": request_id, "trigger": id, "audience": audience,
                                  "time": now})
            partitions = app.conf.topic_partitions
            deliveries = [await fanout_topic.send(key=str(p).encode(), value=value,
                                                  partition=p)
                          for p in range(partitions)]
            await asyncio.gather(*deliveries)
            kind, target = next(iter(audience.items()))
            targeted = await audience_size(kind, target, request.headers.get("Authorization"))
            return json_response({"request": request_id, "targeted": targeted,
                                  "audience": audience, "partitions": partitions},
                                 status=202)

    @app.page("/v1/promo-pools/{id}/codes")
    class PoolCodesView(View):
        async def post(self, request: Request, id: str) -> web.Response:
            pool = config.get("pools", id)
            if pool is None:
                return error_response(404, "not_found", f"no promo pool {id!r}")
            body = await read_json_object(request)
            if isinstance(body, web.Response):
                return body
            codes = body.get("codes")
            problems = []
            if not isinstance(codes, list) or not codes:
                problems.append({"field": "codes", "problem": "must be a non-empty list"})
            else:
                problems += [{"field": f"codes[{i}]", "problem": "must be a non-empty string"}
                             for i, code in enumerate(codes)
                             if not isinstance(code, str) or not code.strip()]
                if len(codes) > MAX_CODES_PER_REQUEST:
                    problems.append({"field": "codes",
                                     "problem": f"at most {MAX_CODES_PER_REQUEST} per request"})
            if pool.get("kind") != "single_use":
                problems.append({"field": "codes", "problem":
                                 "codes can only be added to a single_use pool"})
            if problems:
                return error_response(400, "invalid", "invalid codes", problems)
            event = {"id": f"codes:{uuid.uuid4().hex}", "type": "pool.codes_added",
                     "member": id, "brand": "default",
                     "time": datetime.fromtimestamp(clock.now(), timezone.utc).isoformat(),
                     "data": {"pool": id, "codes": codes}}
            await (await pools_topic.send(key=id.encode(), value=orjson.dumps(event)))
            return json_response({"pool": id, "added": len(codes)}, status=202)
