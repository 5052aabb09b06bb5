"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

import faust
from faust.web import Request, Response, View


def is_ready(app: faust.App, ready_when: tuple[asyncio.Event, ...] = ()) -> bool:
    """Ready = table recovery finished, the worker is not in a rebalance, and every extra
    condition given (configuration read up to date, table routing known) holds."""
    return bool(app.tables.recovery.completed.is_set() and not app.rebalancing
                and all(event.is_set() for event in ready_when))


def register(app: faust.App, ready_when: tuple[asyncio.Event, ...] = ()) -> None:
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
