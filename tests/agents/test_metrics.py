"""Metrics helpers: many observations at once read exactly as one by one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest

from agents.metrics import observe_many


def exposition(fill) -> bytes:
    registry = CollectorRegistry()
    histogram = Histogram("latency_seconds", "latency", registry=registry,
                          buckets=(0.001, 0.01, 0.1, 1.0))
    fill(histogram)
    return b"\n".join(line for line in generate_latest(registry).splitlines()
                      if b"_created" not in line)


def test_observe_many_equals_observing_one_by_one():
    amounts = [0.0, 0.001, 0.0011, 0.05, 0.1, 0.5, 1.0, 7.0, 0.0005, 0.02]
    one_by_one = exposition(lambda h: [h.observe(a) for a in amounts])
    assert exposition(lambda h: observe_many(h, amounts)) == one_by_one
    assert b'latency_seconds_bucket{le="0.001"} 3.0' in one_by_one
    assert b'latency_seconds_bucket{le="+Inf"} 10.0' in one_by_one
    assert exposition(lambda h: observe_many(h, [])) == exposition(lambda h: None)
