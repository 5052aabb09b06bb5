"""The Grafana dashboard only uses metrics and labels the worker really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agents.metrics import REGISTRY

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tillstream.json"


def exported() -> dict[str, set[str]]:
    """Sample names the registry can export, with their label names."""
    names: dict[str, set[str]] = {}
    for collector in REGISTRY._collector_to_names:
        for metric in collector.describe():
            labels = set(getattr(collector, "_labelnames", ()))
            for suffix in ("", "_total", "_bucket", "_count", "_sum", "_created"):
                names[metric.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def test_every_panel_queries_an_exported_metric_by_exported_labels():
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(expressions) >= 10
    for expr in expressions:
        metrics = re.findall(r"\b(tillstream_[a-z_]+)", expr)
        assert metrics, expr
        for metric in metrics:
            assert metric in known, f"{metric} is not exported"
            for group in re.findall(r"by \(([^)]*)\)", expr):
                labels = {label.strip() for label in group.split(",")}
                assert labels <= known[metric], f"{expr}: {labels - known[metric]}"
