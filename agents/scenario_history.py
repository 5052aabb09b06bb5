"""Scenario execution history, aggregated by scenario: the member agent sends every execution
to ``<app>-executions`` keyed by scenario id; this agent appends it to the scenario's pages, so
``GET /v1/scenarios/{id}/executions`` reads one scenario's history from the worker owning that
key — never a scan over members."""

from __future__ import annotations

import faust
from aiohttp import web
import orjson
from faust.web import Request, Response, View

from agents.batching import batch_agent
from api.routing import route_to_owner
from api.errors import json_response, page_params
from tables.batch_store import BatchStore
from tables.paged_lists import PagedLists

#: Executions of one scenario can arrive from many members' partitions; a replayed execution
#: is recognised among this many recent ones.
REMEMBERED_EXECUTIONS = 1024


def register(app: faust.App, executions_topic: faust.TopicT) -> PagedLists:
    store = BatchStore(app, "scenario-executions")
    table = store.table
    history = PagedLists(store, "executions", remember=REMEMBERED_EXECUTIONS)

    async def record(tp, messages: list) -> None:
        """A fetched batch of executions: one append per scenario, one flush."""
        per_scenario: dict[str, list] = {}
        for message in messages:
            execution = orjson.loads(message.value)
            per_scenario.setdefault(message.key.decode(), []).append(
                (execution["id"], [orjson.dumps(execution)]))
        async with store.handling(tp.partition):
            for scenario, batches in per_scenario.items():
                history.append_batches(scenario, batches)

    batch_agent(app, executions_topic, "scenario-history", record)

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
