"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

import faust
from faust.web import Request, Response, View


def is_ready(app: faust.App, ready_when: asyncio.Event | None = None) -> bool:
    """Ready = table recovery finished, the worker is not in a rebalance, and (when given)
    the program configuration has been read up to date."""
    return bool(app.tables.recovery.completed.is_set() and not app.rebalancing
                and (ready_when is None or ready_when.is_set()))


def register(app: faust.App, ready_when: asyncio.Event | None = None) -> None:
    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            if is_ready(app, ready_when):
                assigned: dict[str, list[int]] = {}
                for tp in app.consumer.assignment():
                    assigned.setdefault(tp.topic, []).append(tp.partition)
                return self.json({"status": "ready",
                                  "assigned": {t: sorted(p) for t, p in assigned.items()}})
            return self.json({"status": "recovering"}, status=503)
