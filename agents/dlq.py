"""The dead-letter queue: every record an agent refuses, with the reason, never dropped."""

from __future__ import annotations

from typing import Any

import faust
import orjson

from agents.metrics import DLQ
from agents.topics import EVENT_RETENTION_SECONDS

#: The DLQ keeps at most this much of a refused value (a huge payload is noted, not copied).
MAX_KEPT_VALUE_BYTES = 64 * 1024


class DeadLetters:
    def __init__(self, app: faust.App) -> None:
        self.topic = app.topic(f"{app.conf.id}-dlq", key_serializer="raw",
                               value_serializer="raw", retention=EVENT_RETENTION_SECONDS,
                               deleting=True)

    def record(self, reason: str, message: Any, details: list[dict] | None = None) -> dict:
        """The DLQ record for a refused input message."""
        value = message.value or b""
        kept = value[:MAX_KEPT_VALUE_BYTES]
        return {"reason": reason, "details": details or [],
                "source": {"topic": message.topic, "partition": message.partition,
                           "offset": message.offset},
                "key": (message.key or b"").decode(errors="replace"),
                "value": kept.decode(errors="replace"), "value_bytes": len(value),
                "truncated": len(kept) < len(value)}

    async def refuse(self, out, reason: str, message: Any,
                     details: list[dict] | None = None) -> None:
        """Send a refusal with the records of a batch (an ``agents.outgoing.Outgoing``)."""
        DLQ.labels(reason=reason).inc()
        await out.send(self.topic.get_topic_name(), message.key,
                       orjson.dumps(self.record(reason, message, details)))

    async def send(self, reason: str, message: Any, details: list[dict] | None = None):
        """Send a refusal to the DLQ topic; returns the delivery future."""
        DLQ.labels(reason=reason).inc()
        return await self.topic.send(key=message.key,
                                     value=orjson.dumps(self.record(reason, message, details)))
