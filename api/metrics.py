"""``GET /metrics``: the worker's Prometheus registry; lag and table sizes sampled at scrape."""

from __future__ import annotations

import faust
from aiohttp import web
from faust.web import Request, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.metrics import CONSUMER_LAG, MEMBERS, REGISTRY


def sample_consumer_lag(app: faust.App) -> None:
    consumer = app.consumer
    CONSUMER_LAG.clear()
    for tp in consumer.assignment():
        if tp.topic.endswith("-changelog"):
            continue
        read = consumer._read_offset.get(tp)
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        consumed = 0 if read is None else read + 1
        CONSUMER_LAG.labels(topic=tp.topic, partition=str(tp.partition)).set(
            max(0, highwater - consumed))


def sample_member_table(members) -> None:
    MEMBERS.clear()
    for partition, keys in members.keys_per_partition().items():
        MEMBERS.labels(partition=str(partition)).set(keys)


def register(app: faust.App, samplers=()) -> None:
    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> web.Response:
            sample_consumer_lag(app)
            for sampler in samplers:
                sampler()
            return web.Response(body=generate_latest(REGISTRY),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})
