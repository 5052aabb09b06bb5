"""A webhook receiver for benchmarks: answers every POST with 200 and counts them.

The benchmark program sends webhooks (the ``frequent`` scenario); pointed at a host that does
not resolve, every one of them failed five times, with a log line and a DNS lookup per
attempt, and those retries ran on for seconds after the throughput run, through the latency
runs. A retailer's CRM answers. ``python -m bench.webhook_sink PORT`` serves on 127.0.0.1; the
count is at ``GET /count``.
"""

from __future__ import annotations

import sys

from aiohttp import web


def make_app() -> web.Application:
    received = {"count": 0}

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        received["count"] += 1
        return web.Response(text="ok")

    async def count(request: web.Request) -> web.Response:
        return web.json_response(received)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None,
                print=None)
