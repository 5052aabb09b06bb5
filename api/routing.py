"""Routing a query to the worker that owns a key's partition.

faust's ``app.table_route`` asks the Kafka producer which partition a key maps to, which needs
the producer's metadata for the table's changelog topic; on tansu that metadata was seen to go
missing on a worker that had not produced to the topic, and every routed query then failed.
The partition is a pure function of the key (Kafka's murmur2 partitioner, the same the
embedded transport uses), so this router computes it and asks faust's partition assignor which
worker owns it; forwarding is faust's own.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

import faust
from faust.exceptions import SameNode
from faust.types import TP
from yarl import URL

from agents.embedded_transport import partition_for
from api.errors import error_response


def owner_of(app: faust.App, table: Any, key: bytes) -> str | None:
    """The URL of the worker owning ``key``'s partition of ``table`` (None while unknown)."""
    topic = table.changelog_topic.get_topic_name()
    partitions = table.changelog_topic.partitions or app.conf.topic_partitions
    return app.assignor._tps_url.get(TP(topic, partition_for(key, partitions)))


def route_to_owner(app: faust.App, table: Any, match_info: str):
    """Decorate a view method so the worker owning ``match_info``'s key answers it."""
    def decorator(handler):
        @wraps(handler)
        async def routed(view, request, *args, **kwargs):
            owner = owner_of(app, table, request.match_info[match_info].encode())
            if owner is None:
                return error_response(503, "unavailable",
                                      "the owner of this key is not known (rebalancing)")
            try:
                return await app.router._route_req(URL(owner), view.web, request)
            except SameNode:
                return await handler(view, request, *args, **kwargs)
        return routed
    return decorator
