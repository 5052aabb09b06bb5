"""``POST /v1/events``: one event, or ``{"events": [...]}`` of at most 1000, validated with the
engine's own validator and produced to ``<app>-events`` keyed by the raw member id.

All or nothing: if any event is invalid, none is produced and the 400 lists every bad field of
every event (``events[3].data.amount``). A 202 is answered only once every record is durable in
the log, so an accepted event is never lost. In embedded mode the records are marked as
validated, and the member agent does not validate them a second time
(``BatchRecord.checked``).
"""

from __future__ import annotations

from typing import Any

import faust
import orjson
from aiohttp import web
from faust.web import Request, View

from agents.outgoing import Outgoing
from api.errors import error_response, json_response
from engine.events import EventError, parse_event, to_document

MAX_BATCH = 1000


def validate_batch(body: Any, now: float) -> tuple[list, list[dict]]:
    """The parsed events of a request body, and every problem found (empty when valid)."""
    if isinstance(body, dict) and "events" in body:
        documents, prefix = body["events"], "events"
        if not isinstance(documents, list):
            return [], [{"field": "events", "problem": "must be a list of events"}]
        if not documents:
            return [], [{"field": "events", "problem": "must not be empty"}]
        if len(documents) > MAX_BATCH:
            return [], [{"field": "events",
                         "problem": f"at most {MAX_BATCH} events per request, got {len(documents)}"}]
    else:
        documents, prefix = [body], ""
    events, problems = [], []
    for index, document in enumerate(documents):
        where = f"{prefix}[{index}]." if prefix else ""
        try:
            events.append(parse_event(document, now, internal=False))
        except EventError as exc:
            problems.extend({"field": where + detail["field"], "problem": detail["problem"]}
                            for detail in exc.details)
    return events, problems


def register(app: faust.App, events_topic: faust.TopicT, clock) -> None:
    topic = events_topic.get_topic_name()

    @app.page("/v1/events")
    class EventsView(View):
        async def post(self, request: Request) -> web.Response:
            try:
                body = orjson.loads(await request.read())
            except orjson.JSONDecodeError as exc:
                return error_response(400, "invalid_json", f"body is not JSON: {exc}")
            events, problems = validate_batch(body, clock.now())
            if problems:
                return error_response(400, "invalid_events", "invalid events; none accepted",
                                      problems)
            out = Outgoing(app.producer)
            for event in events:
                await out.send(topic, event.member.encode(), orjson.dumps(to_document(event)),
                               checked=True)
            await out.wait()
            return json_response({"accepted": len(events)}, status=202)
