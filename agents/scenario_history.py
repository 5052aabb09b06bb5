"""Scenario execution history, aggregated by scenario: the member agent sends every execution
to ``<app>-executions`` keyed by scenario id, a fetch's executions of one scenario in one
record (agents/member_agent.py ``BatchExecutions``); this agent appends them to the scenario's
pages, so ``GET /v1/scenarios/{id}/executions`` reads one scenario's history from the worker
owning that key — never a scan over members.

Each execution carries ``source``, the position of the event that ran it; the history skips
positions it has passed (tables/paged_lists.py ``append_from``), so executions sent again after
a crash of the member agent (in records cut differently), or read again after a crash of this
one, are listed once.
"""

from __future__ import annotations

import faust
from aiohttp import web
import orjson
from faust.web import Request, Response, View

from agents.batching import batch_agent
from agents.dlq import DeadLetters
from agents.outgoing import Outgoing
from api.routing import route_to_owner
from api.errors import json_response, page_params
from tables.batch_store import BatchStore, handling
from tables.paged_lists import PagedLists

def register(app: faust.App, executions_topic: faust.TopicT) -> PagedLists:
    store = BatchStore(app, "scenario-executions")
    table = store.table
    history = PagedLists(store, "executions")
    dead_letters = DeadLetters(app)

    async def record(batches: list) -> None:
        """A fetch's executions: one append per scenario and partition, one flush; a record
        that cannot be read goes to the DLQ and the others are listed."""
        out = Outgoing(app.producer)
        async with handling(store) as use:
            for tp, messages in batches:
                per_scenario: dict[str, list] = {}
                for message in messages:
                    try:
                        executions = executions_of(message)
                    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
                        await dead_letters.refuse(out, "malformed_execution", message,
                                                  [{"field": "", "problem": str(exc)}])
                        continue
                    per_scenario.setdefault(message.key.decode(), []).extend(executions)
                use(tp.partition)
                for scenario, items in per_scenario.items():
                    history.append_from(scenario, items)
        await out.wait()

    batch_agent(app, executions_topic, "scenario-history", record, grouped=True)

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


def executions_of(message) -> list[tuple[str | int, int, int, bytes]]:
    """A record's executions with their sources: the lines of a ``BatchExecutions`` record
    (its first line lists the sources), or one execution as a JSON object, as workers of an
    earlier version sent them."""
    value = message.value or b""
    if value[:1] != b"[":
        return [(*source_of(message), value)]
    lines = value.split(b"\n")
    sources = orjson.loads(lines[0])
    if len(sources) != len(lines) - 1:
        raise ValueError(f"executions record at {message.partition}/{message.offset}: "
                         f"{len(sources)} sources for {len(lines) - 1} executions")
    return [(partition, offset, index, item)
            for (partition, offset, index), item in zip(sources, lines[1:])]


def source_of(message) -> tuple[str | int, int, int]:
    """The execution's source position; an execution sent without one (by a worker of an
    earlier version) is positioned by its own place in ``<app>-executions``."""
    document = orjson.loads(message.value or b"")
    source = document.get("source") if isinstance(document, dict) else None
    if (isinstance(source, list) and len(source) == 3
            and all(type(number) is int for number in source)):
        return source[0], source[1], source[2]
    return f"executions-{message.partition}", message.offset, 0
