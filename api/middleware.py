"""aiohttp middlewares of the API: auth, error shape (no traceback ever reaches a client),
and HTTP metrics by route template (never by raw path, which would carry member ids)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from faust.web import View

from agents.metrics import HTTP_LATENCY, HTTP_REQUESTS
from api.auth import required_roles, role_for
from api.errors import error_response

logger = logging.getLogger(__name__)


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


def _allowed_methods(request: web.Request, exc: Exception | None = None) -> str:
    """The methods a route answers, for the ``Allow`` header of a 405."""
    allowed = getattr(exc, "allowed_methods", None)
    if not allowed:
        handler = request.match_info.handler
        views = [cell.cell_contents for cell in getattr(handler, "__closure__", None) or ()
                 if isinstance(cell.cell_contents, View)]
        allowed = [name.upper() for name in ("get", "post", "put", "patch", "delete")
                   if views and getattr(type(views[0]), name) is not getattr(View, name)]
    return ", ".join(sorted(allowed))


def _method_not_allowed(request: web.Request, exc: Exception | None = None) -> web.Response:
    response = error_response(405, "method_not_allowed",
                              f"{request.method} is not allowed on {request.path}")
    response.headers["Allow"] = _allowed_methods(request, exc)
    return response


def build_middlewares(tokens: list[tuple[str, bytes]]) -> list:
    @web.middleware
    async def observe(request: web.Request, handler):
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            if response.status == 405:
                response = _method_not_allowed(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            if exc.status == 413:
                return error_response(413, "too_large", "request body too large")
            if exc.status == 404:
                return error_response(404, "not_found", f"no route for {request.path}")
            if exc.status == 405:
                return _method_not_allowed(request, exc)
            raise
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, _route_label(request))
            return error_response(500, "internal", "internal error")
        finally:
            route = _route_label(request)
            HTTP_REQUESTS.labels(route=route, method=request.method, status=str(status)).inc()
            HTTP_LATENCY.labels(route=route, method=request.method).observe(
                time.perf_counter() - started)

    @web.middleware
    async def authenticate(request: web.Request, handler):
        allowed = required_roles(request.method, request.path)
        if allowed is None or not tokens:
            return await handler(request)
        role = role_for(request.headers.get("Authorization"), tokens)
        if role is None:
            return error_response(401, "unauthorized", "a valid bearer token is required")
        if role not in allowed:
            return error_response(403, "forbidden",
                                  f"role {role!r} may not {request.method} {request.path}")
        return await handler(request)

    return [observe, authenticate]
