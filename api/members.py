"""Member queries: state, ledger, executions, messages — answered by the worker that owns the
member's partition (faust table routing), so any worker can be asked."""

from __future__ import annotations

import faust
from aiohttp import web
from faust.web import Request, Response, View

from agents.member_agent import MemberProcessor
from api.routing import route_to_owner
from api.errors import error_response, json_response, page_params


def register(app: faust.App, processor: MemberProcessor) -> None:
    tables = processor.tables
    members_table = tables.members.table

    def not_found(member: str) -> Response:
        return error_response(404, "not_found", f"no member {member!r}")

    @app.page("/v1/members/{member}")
    class MemberView(View):
        @route_to_owner(app, members_table, "member")
        async def get(self, request: Request, member: str) -> Response:
            state = tables.members.get(member)
            if state is None:
                return not_found(member)
            return json_response(state.to_view())

    store = tables.members

    def with_delivery_status(member: str, messages: list[dict]) -> list[dict]:
        return [dict(item, status=store.message_status(member, item["id"]) or item["status"])
                for item in messages]

    def paged(name: str, lists, field: str, decorate=None):
        class PagedView(View):
            @route_to_owner(app, members_table, "member")
            async def get(self, request: Request, member: str) -> Response:
                params = page_params(request)
                if isinstance(params, web.Response):
                    return params
                offset, limit = params
                found = store.newest_first(lists, member, offset, limit)
                if found is None:
                    return not_found(member)
                items, total = found
                if decorate is not None:
                    items = decorate(member, items)
                return json_response({field: items, "total": total, "offset": offset,
                                      "limit": limit})
        PagedView.__name__ = f"Member{name}View"
        app.page(f"/v1/members/{{member}}/{name}")(PagedView)

    paged("ledger", store.ledger, "entries")
    paged("executions", store.executions, "executions")
    paged("messages", store.messages, "messages", with_delivery_status)
