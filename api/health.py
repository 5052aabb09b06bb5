"""Liveness and readiness probes."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View


def is_ready(app: faust.App) -> bool:
    """Ready = table recovery finished and the worker is not in a rebalance."""
    return bool(app.tables.recovery.completed.is_set() and not app.rebalancing)


def register(app: faust.App) -> None:
    @app.page("/healthz")
    class Healthz(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/readyz")
    class Readyz(View):
        async def get(self, request: Request) -> Response:
            if is_ready(app):
                assigned: dict[str, list[int]] = {}
                for tp in app.consumer.assignment():
                    assigned.setdefault(tp.topic, []).append(tp.partition)
                return self.json({"status": "ready",
                                  "assigned": {t: sorted(p) for t, p in assigned.items()}})
            return self.json({"status": "recovering"}, status=503)
