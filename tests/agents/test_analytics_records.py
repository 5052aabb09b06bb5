"""Analytics records: a batch's deltas travel per event with their offsets, so the analytics
agent counts each event once even when a replay after a crash cuts the events differently."""

from __future__ import annotations

import orjson
from types import SimpleNamespace

from agents.analytics import Aggregates, row_key
from agents.member_agent import BatchAnalytics
from tests.tables.test_batch_store import FakeLog, FakeTable


def aggregates(tmp_path) -> Aggregates:
    table = FakeTable(tmp_path)
    app = SimpleNamespace(conf=SimpleNamespace(topic_partitions=4), producer=FakeLog(),
                          Table=lambda name, **options: table)
    return Aggregates(app)


def purchase_deltas(amount: float) -> list:
    return [("brand", "default", "revenue", amount), ("brand", "default", "purchases", 1),
            ("till", "T1", "revenue", amount)]


def records_for(offsets: list[int]) -> list[tuple[str, dict]]:
    batch = BatchAnalytics(partition=2)
    for offset in offsets:
        batch.add("default", offset, purchase_deltas(10.0 * (offset + 1)))
    return [(brand, orjson.loads(orjson.dumps(record))) for brand, record in batch.records()]


def apply_all(target: Aggregates, records) -> None:
    for brand, record in records:
        target.apply(brand, record["partition"], record["keys"], record["events"])


def test_a_record_names_each_key_once():
    (_, record), = records_for([0, 1, 2])
    assert len(record["keys"]) == 3 and len(record["events"]) == 3


def test_a_replay_cut_into_other_batches_counts_each_event_once(tmp_path):
    target = aggregates(tmp_path)
    apply_all(target, records_for([0, 1, 2, 3]))
    apply_all(target, records_for([2, 3, 4, 5]))     # the crash replayed 2 and 3
    brand = target.row(row_key("default", "brand"))["default"]
    assert brand == {"revenue": 210.0, "purchases": 6}   # 10 + 20 + ... + 60
    assert target.row(row_key("default", "till")) == {"T1": {"revenue": 210.0}}
