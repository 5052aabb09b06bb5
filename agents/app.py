"""Builds the faust App for a worker: transport, tables, agents and web routes, wired explicitly."""

from __future__ import annotations

import faust

from agents import counter, embedded_transport
from agents.settings import Settings
from api import health, metrics
from api.auth import check_open_api_allowed, parse_tokens
from api.middleware import build_middlewares

#: Largest accepted request body (a full batch of 1000 events fits comfortably).
MAX_REQUEST_BYTES = 4 * 1024 * 1024


def create_app(settings: Settings) -> faust.App:
    tokens = parse_tokens(settings.tokens)
    check_open_api_allowed(tokens, settings.web_host)
    embedded_transport.register()
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
        web_application_options={"client_max_size": MAX_REQUEST_BYTES,
                                 "middlewares": build_middlewares(tokens)},
    )
    options.update(settings.faust_options)
    app = faust.App(settings.app_id, **options)
    app.tillstream_settings = settings
    health.register(app)
    metrics.register(app)
    counter.register(app)
    return app
