"""Scenario execution history, aggregated by scenario: the member agent sends every execution
to ``<app>-executions`` keyed by scenario id; this agent appends it to the scenario's pages, so
``GET /v1/scenarios/{id}/executions`` reads one scenario's history from the worker owning that
key — never a scan over members."""

from __future__ import annotations

import faust
from aiohttp import web
import orjson
from faust.web import Request, Response, View

from agents.topics import CHANGELOG_CONFIGS
from api.routing import route_to_owner
from api.errors import json_response, page_params
from tables.paged_lists import PagedLists

#: Executions of one scenario can arrive from many members' partitions; a replayed execution
#: is recognised among this many recent ones.
REMEMBERED_EXECUTIONS = 1024


def register(app: faust.App, executions_topic: faust.TopicT) -> PagedLists:
    table = app.Table("scenario-executions", key_type=bytes, value_type=bytes, default=None,
                      extra_topic_configs=CHANGELOG_CONFIGS)
    history = PagedLists(table, "executions", remember=REMEMBERED_EXECUTIONS)

    @app.agent(executions_topic, name="scenario-history")
    async def record(stream):
        async for event in stream.events():
            execution = orjson.loads(event.value)
            history.append(event.key.decode(), [execution], execution["id"])

    @app.page("/v1/scenarios/{scenario}/executions")
    class ScenarioExecutionsView(View):
        @route_to_owner(app, table, "scenario")
        async def get(self, request: Request, scenario: str) -> Response:
            params = page_params(request)
            if isinstance(params, web.Response):
                return params
            offset, limit = params
            items, total = history.newest_first(scenario, offset, limit)
            return json_response({"executions": items, "total": total, "offset": offset,
                                  "limit": limit})

    return history
