"""Admin API over the replicated program configuration (PRODUCT.md §3).

Every write is validated with the engine's validators (every problem listed in one 400), goes
through the config topic, and returns once this worker's replica has it; every worker sees it
within seconds, without restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import faust
import orjson
from aiohttp import web
from faust.web import Request, View

from api.errors import error_response, json_response
from engine import program as engine_program
from tables.config import ConfigReplica

#: Kind names as stored in the config topic.
PROGRAM, BLACKLIST = "program", "blacklist"


@dataclass(frozen=True)
class Resource:
    """A collection of configuration objects served at ``/v1/<path>/{id}``."""

    path: str
    kind: str
    validate: Callable[[dict, object], list[dict]]
    deletable: bool = True


RESOURCES = (
    Resource("tiers", "tiers", lambda d, p: engine_program.validate_tier(d)),
    Resource("segments", "segments", lambda d, p: engine_program.validate_segment(d)),
    Resource("triggers", "triggers", lambda d, p: engine_program.validate_trigger(d)),
    Resource("scenarios", "scenarios", engine_program.validate_scenario),
    Resource("rewards", "rewards", lambda d, p: engine_program.validate_reward(d)),
    Resource("promo-pools", "pools", lambda d, p: engine_program.validate_pool(d),
             deletable=False),
    Resource("goals", "goals", lambda d, p: engine_program.validate_goal(d)),
)


async def read_json_object(request: Request) -> dict | web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return error_response(400, "invalid_json", f"body is not JSON: {exc}")
    if not isinstance(body, dict):
        return error_response(400, "invalid_body", "body must be a JSON object")
    return body


def references_to(config: ConfigReplica, kind: str, object_id: str) -> list[str]:
    """Scenarios that use a trigger, tier, segment or reward (such objects cannot be deleted)."""
    users = []
    for scenario_id, scenario in config.objects.get("scenarios", {}).items():
        if kind == "triggers" and scenario.get("trigger") == object_id:
            users.append(scenario_id)
        elif kind == "tiers" and object_id in (scenario.get("tiers") or []):
            users.append(scenario_id)
        elif kind == "segments" and object_id in (scenario.get("segments") or []):
            users.append(scenario_id)
        elif kind == "rewards" and any(a.get("reward") == object_id
                                       for a in scenario.get("actions") or []):
            users.append(scenario_id)
    return sorted(users)


def register(app: faust.App, config: ConfigReplica) -> None:
    def brand_key(request: Request) -> str:
        brand = request.query.get("brand")
        return "default" if not brand else brand

    def singleton(path: str, kind: str, validate, default: dict):
        class SingletonView(View):
            async def get(self, request: Request) -> web.Response:
                brand = brand_key(request)
                value = config.get(kind, brand)
                if value is None and brand != "default":
                    value = config.get(kind, "default")
                return json_response(value if value is not None else default)

            async def put(self, request: Request) -> web.Response:
                body = await read_json_object(request)
                if isinstance(body, web.Response):
                    return body
                problems = validate(body)
                if problems:
                    return error_response(400, "invalid", f"invalid {path}", problems)
                await config.write(kind, brand_key(request), body)
                return json_response(body)

        SingletonView.__name__ = f"{kind.title()}View"
        app.page(f"/v1/{path}")(SingletonView)

    singleton("program", PROGRAM, engine_program.validate_settings,
              engine_program.DEFAULT_SETTINGS)
    singleton("blacklist", BLACKLIST, engine_program.validate_blacklist,
              {"phones": [], "emails": []})

    for resource in RESOURCES:
        _register_collection(app, config, resource)


def _register_collection(app: faust.App, config: ConfigReplica, resource: Resource) -> None:
    kind = resource.kind

    class CollectionView(View):
        async def get(self, request: Request) -> web.Response:
            objects = config.objects.get(kind, {})
            return json_response({resource.path.replace("-", "_"): [
                dict(value, id=object_id) for object_id, value in sorted(objects.items())]})

    class ObjectView(View):
        async def get(self, request: Request, id: str) -> web.Response:
            value = config.get(kind, id)
            if value is None:
                return error_response(404, "not_found", f"no {resource.path} {id!r}")
            return json_response(dict(value, id=id))

        async def put(self, request: Request, id: str) -> web.Response:
            body = await read_json_object(request)
            if isinstance(body, web.Response):
                return body
            body.pop("id", None)
            problems = resource.validate(body, config.program())
            if problems:
                return error_response(400, "invalid", f"invalid {resource.path} {id!r}",
                                      problems)
            await config.write(kind, id, body)
            return json_response(dict(body, id=id))

        async def delete(self, request: Request, id: str) -> web.Response:
            if not resource.deletable:
                return error_response(405, "method_not_allowed",
                                      f"{resource.path} cannot be deleted")
            if config.get(kind, id) is None:
                return error_response(404, "not_found", f"no {resource.path} {id!r}")
            users = references_to(config, kind, id)
            if users:
                return error_response(409, "in_use", f"{resource.path} {id!r} is used",
                                      [{"field": "scenarios", "problem": f"used by {s}"}
                                       for s in users])
            await config.write(kind, id, None)
            return web.Response(status=204)

    CollectionView.__name__ = f"{kind.title()}CollectionView"
    ObjectView.__name__ = f"{kind.title()}View"
    app.page(f"/v1/{resource.path}")(CollectionView)
    app.page(f"/v1/{resource.path}/{{id}}")(ObjectView)
