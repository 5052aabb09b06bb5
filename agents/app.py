"""Builds the faust App for a worker: transport, tables, agents and web routes, wired explicitly."""

from __future__ import annotations

import faust

from agents import (analytics, collector, counter, embedded_transport, fanout, kafka_transport,
                    member_agent, outbox_delivery, scenario_history, side_agents, timer_ticker)
from agents.clock import Clock
from agents.settings import Settings
from api import admin, events, fire, health, members, metrics, openapi, test_clock
from api import analytics as analytics_api
from api.auth import check_open_api_allowed, parse_tokens
from api.middleware import build_middlewares
from engine.program import compile_program
from tables.config import ConfigReplica

#: Largest accepted request body (a full batch of 1000 events fits comfortably).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: Kafka mode: the largest record batch the producer builds for one partition (faust's default
#: is 16 KiB). A fetch's effects and changelog records are awaited before its offsets move on,
#: and the producer sends one batch per partition per request, so at 16 KiB a fetch's few
#: megabytes took dozens of broker round trips (about 5 member states per batch). Half of
#: faust's 1 MB request limit, and of Kafka's default ``message.max.bytes``.
PRODUCER_BATCH_BYTES = 512 * 1024


def create_app(settings: Settings) -> faust.App:
    tokens = parse_tokens(settings.tokens)
    check_open_api_allowed(tokens, settings.web_host)
    embedded_transport.register()
    kafka_transport.register()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    options = dict(
        broker=settings.broker,
        store="rocksdb://",
        datadir=str(settings.data_dir.resolve()),
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        key_serializer="raw",
        value_serializer="raw",
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        web_application_options={"client_max_size": MAX_REQUEST_BYTES,
                                 "middlewares": build_middlewares(tokens)},
    )
    options.update(settings.faust_options)
    app = faust.App(settings.app_id, **options)
    app.tillstream_settings = settings
    collector.register(app)
    if settings.pipeline == "minimal":
        counter.register(app)
        health.register(app)
        metrics.register(app)
        return app
    clock = Clock()

    config = ConfigReplica(app, compile_program)
    app.task(config.run)
    processor = member_agent.register(app, config, clock)
    topics = processor.topics
    outbox_delivery.register(app, settings, outbox_topic=topics.outbox,
                             events_topic=topics.events, clock=clock)
    side_agents.register(app, topics, config)
    scenario_history.register(app, topics.executions)
    _, aggregates = analytics.register(app)
    timer_ticker.register(app, processor.tables.timers, topics.events, clock)
    fanout_topic = fanout.register(app, processor.tables.members, topics.events, clock)

    health.register(app, ready_when=(config.caught_up,))
    metrics.register(app, samplers=[lambda: metrics.sample_member_table(
        processor.tables.members)])
    events.register(app, topics.events, clock)
    members.register(app, processor)
    admin.register(app, config)
    async def audience_size(kind: str, target: str, authorization: str | None) -> int:
        brands = sorted({"default", *config.objects.get("program", {})})
        dimension = "tier" if kind == "tier" else "segment"
        return await analytics_api.members_in(app, aggregates, brands, dimension, target,
                                              authorization)

    fire.register(app, config, topics.events, fanout_topic, topics.side["pools"], clock,
                  audience_size)
    analytics_api.register(app, aggregates, clock)
    openapi.register(app)
    if settings.test_clock:
        test_clock.register(app, clock)
    return app
