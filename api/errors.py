"""The API's error bodies: ``{"error": {"code", "message", "details"}}`` (PRODUCT.md §3)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
import orjson


def error_response(status: int, code: str, message: str,
                   details: list[dict[str, Any]] | None = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")


#: Larger offsets are refused (no list is that long, and the answer echoes the offset).
MAX_OFFSET = 1_000_000_000


def page_params(request: web.Request, max_limit: int = 500) -> tuple[int, int] | web.Response:
    """``?offset=&limit=`` as integers, or a 400 listing each bad parameter."""
    details = []
    values = {}
    for name, default in (("offset", 0), ("limit", 50)):
        raw = request.query.get(name)
        try:
            values[name] = default if raw is None else int(raw)
        except ValueError:
            details.append({"field": name, "problem": "must be an integer"})
            continue
        if values[name] < 0:
            details.append({"field": name, "problem": "must be >= 0"})
    if "offset" in values and values["offset"] > MAX_OFFSET:
        details.append({"field": "offset", "problem": f"must be <= {MAX_OFFSET}"})
    if "limit" in values and values["limit"] > max_limit:
        details.append({"field": "limit", "problem": f"must be <= {max_limit}"})
    if details:
        return error_response(400, "invalid_query", "invalid paging parameters", details)
    return values["offset"], values["limit"]
