"""The minimal per-member agent that proves the plumbing: counts events and sums amounts.

It stands in for the loyalty member agent until that lands. Replays are harmless: each member's
row remembers the last source offset it applied (a member always lives on one partition), and
a replayed record only re-writes the row, so a changelog record lost in a crash is re-sent.
"""

from __future__ import annotations

import asyncio

import faust
import orjson
from faust.web import Request, Response, View

from agents.topics import CHANGELOG_CONFIGS, events_topic


def register(app: faust.App) -> None:
    events = events_topic(app)
    # key_type=bytes makes the table's key serializer raw: the changelog key and the routing
    # hash are the member id's utf-8 bytes, exactly as on the events topic.
    counts = app.Table("member-counts", default=None, key_type=bytes, value_type=bytes,
                       extra_topic_configs=CHANGELOG_CONFIGS)
    app.tillstream_counts = counts

    @app.agent(events, name="count-events")
    async def count_events(stream):
        async for event in stream.events():
            member = event.key
            offset = event.message.offset
            raw_row = counts.get(member)
            row = orjson.loads(raw_row) if raw_row else {"count": 0, "amount": 0.0, "offset": -1}
            if offset > row["offset"]:
                try:
                    amount = float(orjson.loads(event.value).get("data", {}).get("amount", 0))
                except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                    amount = 0.0
                row = {"count": row["count"] + 1, "amount": row["amount"] + amount,
                       "offset": offset}
            counts[member] = orjson.dumps(row)

    @app.page("/v1/counters/{member}")
    class CounterView(View):
        @app.table_route(table=counts, match_info="member")
        async def get(self, request: Request, member: str) -> Response:
            raw_row = counts.get(member.encode())
            if raw_row is None:
                return self.json({"error": {"code": "not_found", "message": f"no member {member}"}},
                                 status=404)
            row = orjson.loads(raw_row)
            return self.json({"member": member, "count": row["count"], "amount": row["amount"]})

    @app.page("/v1/counters")
    class IngestView(View):
        async def post(self, request: Request) -> Response:
            body = await request.json()
            records = body.get("events", [body]) if isinstance(body, dict) else body
            deliveries = [await events.send(key=str(record["member"]).encode(),
                                            value=orjson.dumps(record))
                          for record in records]
            await asyncio.gather(*deliveries)
            return self.json({"accepted": len(records)}, status=202)
