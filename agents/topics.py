"""The topics of a Tillstream deployment, declared with explicit configs.

Every topic is created with an explicit ``cleanup.policy`` and ``retention.ms``: brokers that
answer empty topic configs (tansu 0.6) otherwise leave consumers guessing.
"""

from __future__ import annotations

import faust

#: Input events are kept a week: long enough to replay after an outage, short enough to
#: bound the disk.
EVENT_RETENTION_SECONDS = 7 * 24 * 3600

#: Configs for the changelog topics of tables (faust adds ``cleanup.policy=compact``).
CHANGELOG_CONFIGS = {"retention.ms": -1}


def events_topic(app: faust.App) -> faust.TopicT:
    """``<app>-events``: key = raw member id (utf-8), value = the event as JSON."""
    return app.topic(f"{app.conf.id}-events", key_serializer="raw", value_serializer="raw",
                     retention=EVENT_RETENTION_SECONDS, deleting=True)
