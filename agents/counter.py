"""The minimal per-member agent (``TILLSTREAM_PIPELINE=minimal``): the workload the benchmarks
run on every engine alike. Per event it adds ``data.amount`` to the member's total; when a
member's total first reaches ``THRESHOLD`` it emits one record to ``<app>-crossings``.

It takes the batch path (agents/batching.py) with a :class:`tables.batch_store.BatchStore`,
like the member agent, so it measures the plumbing the loyalty pipeline stands on. Replays are
harmless: each member's row remembers the last source offset it applied (a member always lives
on one partition), so a replayed record changes nothing; a crossing emitted before a crash is
emitted again on replay (at least once, with the same event id).
"""

from __future__ import annotations

import time

import faust
import orjson
from faust.web import Request, Response, View

from agents.batching import batch_agent
from agents.metrics import EVENT_TO_EFFECT, EVENTS, observe_many
from agents.outgoing import Outgoing
from agents.topics import EVENT_RETENTION_SECONDS, events_topic
from tables.batch_store import BatchStore, handling

THRESHOLD = 1000.0


def _amount(document: dict) -> float:
    data = document.get("data")
    try:
        return float(data.get("amount", 0)) if isinstance(data, dict) else 0.0
    except (TypeError, ValueError):
        return 0.0


def register(app: faust.App) -> None:
    events = events_topic(app)
    crossings = app.topic(f"{app.conf.id}-crossings", key_serializer="raw",
                          value_serializer="raw", retention=EVENT_RETENTION_SECONDS,
                          deleting=True)
    events_topic_name = events.get_topic_name()
    store = BatchStore(app, "member-counts")
    counts = store.table
    app.tillstream_counts = counts

    async def count_batches(batches: list) -> None:
        out = Outgoing(app.producer)
        crossings_topic = crossings.get_topic_name()
        async with handling(store) as use:
            for tp, messages in batches:
                use(tp.partition)
                for message in messages:
                    member = message.key
                    row = store.get_live(member, orjson.loads)
                    if row is None:
                        row = {"count": 0, "amount": 0.0, "offset": -1}
                    elif message.offset <= row["offset"]:
                        continue
                    try:
                        document = orjson.loads(message.value)
                    except orjson.JSONDecodeError:
                        document = {}
                    if not isinstance(document, dict):
                        document = {}
                    total = row["amount"] + _amount(document)
                    if row["amount"] < THRESHOLD <= total:
                        await out.send(crossings_topic, member, orjson.dumps(
                            {"member": member.decode(errors="replace"), "total": total,
                             "event": document.get("id")}))
                    row["count"] += 1
                    row["amount"] = total
                    row["offset"] = message.offset
                    store.put_live(member, row, orjson.dumps)
            await out.wait()
        messages = [message for _, batch in batches for message in batch]
        EVENTS.labels(type="purchase", outcome="applied").inc(len(messages))
        now = time.time()
        observe_many(EVENT_TO_EFFECT, [max(0.0, now - message.timestamp)
                                       for message in messages if message.timestamp])

    batch_agent(app, events, "count-events", count_batches, grouped=True)

    @app.page("/v1/counters/{member}")
    class CounterView(View):
        @app.table_route(table=counts, match_info="member")
        async def get(self, request: Request, member: str) -> Response:
            raw_row = store.get(member.encode())
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
            out = Outgoing(app.producer)
            for record in records:
                await out.send(events_topic_name, str(record["member"]).encode(),
                               orjson.dumps(record))
            await out.wait()
            return self.json({"accepted": len(records)}, status=202)
