"""``GET /v1/analytics/brands/{brand}`` and ``GET /v1/analytics/brands/{brand}/{dimension}``:
the aggregates of agents/analytics.py, answered by the worker owning the brand's partition.

Dimensions: ``tier``, ``segment``, ``store``, ``till`` (metrics per value), ``till_hour``
(purchases per till per hour of ``?date=YYYY-MM-DD``, default today) and ``active``
(members whose latest activity falls in the last ``?days=`` days, default 30, per tier).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import faust
from faust.web import Request, Response, View

from agents.analytics import Aggregates, row_key
from api.routing import owner_of, route_to_owner
from api.errors import error_response, json_response

DIMENSIONS = ("tier", "segment", "store", "till", "till_hour", "active")
METRICS = ("members", "points_issued", "points_redeemed", "points_expired", "revenue",
           "purchases")


def active_members(aggregates: Aggregates, brand: str, days: int, now: float) -> dict:
    since = (datetime.fromtimestamp(now, timezone.utc) - timedelta(days=days - 1)).strftime(
        "%Y-%m-%d")
    per_tier: dict[str, int] = {}
    for value, metrics in aggregates.row(row_key(brand, "last_active_day")).items():
        tier, _, day = value.rpartition("|")
        if day >= since:
            per_tier[tier] = per_tier.get(tier, 0) + metrics.get("members", 0)
    return {"days": days, "since": since, "members": sum(per_tier.values()),
            "tiers": per_tier}


def register(app: faust.App, aggregates: Aggregates, clock) -> None:
    table = aggregates.table

    @app.page("/v1/analytics/brands/{brand}")
    class BrandSummaryView(View):
        @route_to_owner(app, table, "brand")
        async def get(self, request: Request, brand: str) -> Response:
            totals = aggregates.row(row_key(brand, "brand")).get(brand, {})
            summary = {metric: totals.get(metric, 0) for metric in METRICS}
            summary["active_30d"] = active_members(aggregates, brand, 30, clock.now())["members"]
            return json_response({"brand": brand, **summary})

    @app.page("/v1/analytics/brands/{brand}/{dimension}")
    class DimensionView(View):
        @route_to_owner(app, table, "brand")
        async def get(self, request: Request, brand: str, dimension: str) -> Response:
            if dimension not in DIMENSIONS:
                return error_response(404, "not_found", f"no analytics dimension {dimension!r}",
                                      [{"field": "dimension",
                                        "problem": f"one of {', '.join(DIMENSIONS)}"}])
            if dimension == "active":
                raw = request.query.get("days", "30")
                if not raw.isdigit() or not 1 <= int(raw) <= 365:
                    return error_response(400, "invalid_query", "invalid days",
                                          [{"field": "days", "problem": "an integer 1..365"}])
                return json_response({"brand": brand, **active_members(
                    aggregates, brand, int(raw), clock.now())})
            if dimension == "till_hour":
                day = request.query.get("date") or datetime.fromtimestamp(
                    clock.now(), timezone.utc).strftime("%Y-%m-%d")
                try:
                    datetime.strptime(day, "%Y-%m-%d")
                except ValueError:
                    return error_response(400, "invalid_query", "invalid date",
                                          [{"field": "date", "problem": "must be YYYY-MM-DD"}])
                tills: dict[str, dict[str, int]] = {}
                for value, metrics in aggregates.row(row_key(brand, dimension, day)).items():
                    till, _, hour = value.rpartition("|")
                    tills.setdefault(till, {})[hour] = metrics.get("purchases", 0)
                return json_response({"brand": brand, "date": day, "tills": tills})
            values = aggregates.row(row_key(brand, dimension))
            return json_response({"brand": brand, "dimension": dimension, "values": values})


async def members_in(app: faust.App, aggregates: Aggregates, brands: list[str], dimension: str,
                     value: str, authorization: str | None) -> int:
    """Members counted in one tier or segment across brands, from the analytics aggregates;
    each brand's row is read on the worker that owns it (asked over HTTP when not this one)."""
    total = 0
    for brand in brands:
        owner = owner_of(app, aggregates.table, brand.encode())
        if owner is None or str(owner).rstrip("/") == str(app.conf.canonical_url).rstrip("/"):
            row = aggregates.row(row_key(brand, dimension))
            total += int(row.get(value, {}).get("members", 0))
            continue
        headers = {"Authorization": authorization} if authorization else {}
        url = f"{str(owner).rstrip('/')}/v1/analytics/brands/{brand}/{dimension}"
        async with app.http_client.get(url, headers=headers) as response:
            if response.status == 200:
                body = await response.json()
                total += int(body["values"].get(value, {}).get("members", 0))
    return total
