"""Fan-out of on-demand triggers to a tier or a segment, without blocking the API.

``POST /v1/triggers/{id}/fire`` with ``{"tier": ...}`` or ``{"segment": ...}`` writes one
request per partition to ``<app>-fanout`` (same partition count as the events topic). The
worker owning partition *p* of the fan-out topic owns partition *p* of the member table, so it
walks the members of that partition in its local store and sends one ``trigger.fired`` event
per member in the audience. Each event's id is derived from the request id, so a fan-out
repeated after a crash fires nobody twice.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import faust
import orjson

from agents.embedded_transport import partition_for
from agents.topics import EVENT_RETENTION_SECONDS
from tables.members import MemberStore

#: Sends awaited together while walking a partition (bounds memory, keeps the loop responsive).
SEND_CHUNK = 500


def fanout_topic(app: faust.App) -> faust.TopicT:
    return app.topic(f"{app.conf.id}-fanout", key_serializer="raw", value_serializer="raw",
                     retention=EVENT_RETENTION_SECONDS, deleting=True)


def trigger_event(request: str, trigger: str, member: str, now: float) -> dict:
    return {"id": f"fire:{request}:{member}", "type": "trigger.fired", "member": member,
            "time": datetime.fromtimestamp(now, timezone.utc).isoformat(),
            "data": {"trigger": trigger}}


def in_audience(state, audience: dict) -> bool:
    if state.status != "active":
        return False
    if "tier" in audience:
        return state.tier == audience["tier"]
    return audience["segment"] in state.segments


def register(app: faust.App, members: MemberStore, events_topic: faust.TopicT,
             clock) -> faust.TopicT:
    topic = fanout_topic(app)

    @app.agent(topic, name="trigger-fanout")
    async def fan_out(stream):
        async for event in stream.events():
            request = orjson.loads(event.value)
            partition = event.message.partition
            partitions = app.conf.topic_partitions
            pending = []
            for member, state in members.members():
                if partition_for(member.encode(), partitions) != partition:
                    continue
                if not in_audience(state, request["audience"]):
                    continue
                pending.append(await events_topic.send(
                    key=member.encode(), value=orjson.dumps(trigger_event(
                        request["request"], request["trigger"], member, request["time"]))))
                if len(pending) >= SEND_CHUNK:
                    await asyncio.gather(*pending)
                    pending = []
            if pending:
                await asyncio.gather(*pending)

    return topic
