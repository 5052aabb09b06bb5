"""``POST /v1/admin/clock`` ``{"advance": seconds}``: moves the worker's clock forward so tests
can fire time-based triggers. Registered only with ``TILLSTREAM_TEST_CLOCK=1``; never in
production."""

from __future__ import annotations

import faust
import orjson
from aiohttp import web
from faust.web import Request, View

from agents.clock import Clock
from api.errors import error_response, json_response


def register(app: faust.App, clock: Clock) -> None:
    @app.page("/v1/admin/clock")
    class ClockView(View):
        async def get(self, request: Request) -> web.Response:
            return json_response({"now": clock.now(), "offset": clock.offset})

        async def post(self, request: Request) -> web.Response:
            try:
                body = orjson.loads(await request.read())
                seconds = float(body["advance"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return error_response(400, "invalid", "body must be {\"advance\": seconds}",
                                      [{"field": "advance", "problem": "must be a number"}])
            if seconds < 0:
                return error_response(400, "invalid", "the clock only moves forward",
                                      [{"field": "advance", "problem": "must be >= 0"}])
            return json_response({"now": clock.advance(seconds), "offset": clock.offset})
