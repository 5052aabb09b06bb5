"""Executions reach the scenario history with the position of the event that ran them, a
fetch's executions of one scenario in one record."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

import agents.member_agent
from agents.member_agent import BatchExecutions, with_source
from agents.scenario_history import executions_of, source_of


def execution(event: str, scenario: str) -> bytes:
    return orjson.dumps({"id": f"{event}:{scenario}", "scenario": scenario})


def as_read(scenario: bytes, value: bytes, offset: int = 0) -> SimpleNamespace:
    return SimpleNamespace(key=scenario, value=value, partition=0, offset=offset)


def test_an_execution_is_sent_with_its_event_position_and_read_back():
    sent = with_source(execution("e1", "welcome"), 2, 17, 1)
    assert orjson.loads(sent) == {"id": "e1:welcome", "scenario": "welcome",
                                  "source": [2, 17, 1]}
    assert source_of(SimpleNamespace(value=sent, partition=0, offset=5)) == (2, 17, 1)


def test_a_fetchs_executions_go_out_as_one_record_per_scenario_and_come_back_in_order():
    batch = BatchExecutions()
    batch.add("double", 0, 10, 1, execution("e10", "double"))
    batch.add("welcome", 0, 11, 1, execution("e11", "welcome"))
    batch.add("double", 0, 11, 2, execution("e11", "double"))
    batch.add("double", 3, 4, 1, execution("e4", "double"))
    records = dict(batch.records())
    assert sorted(records) == [b"double", b"welcome"]
    read = executions_of(as_read(b"double", records[b"double"]))
    assert [(p, o, i) for p, o, i, _ in read] == [(0, 10, 1), (0, 11, 2), (3, 4, 1)]
    assert [orjson.loads(item) for *_, item in read] == [
        {"id": "e10:double", "scenario": "double", "source": [0, 10, 1]},
        {"id": "e11:double", "scenario": "double", "source": [0, 11, 2]},
        {"id": "e4:double", "scenario": "double", "source": [3, 4, 1]}]
    assert executions_of(as_read(b"welcome", records[b"welcome"]))[0][:3] == (0, 11, 1)


def test_a_record_holds_at_most_executions_per_record(monkeypatch):
    monkeypatch.setattr(agents.member_agent, "EXECUTIONS_PER_RECORD", 2)
    batch = BatchExecutions()
    for offset in range(5):
        batch.add("double", 1, offset, 1, execution(f"e{offset}", "double"))
    records = batch.records()
    assert [len(executions_of(as_read(key, value))) for key, value in records] == [2, 2, 1]
    assert [o for key, value in records for _, o, _, _ in executions_of(as_read(key, value))] \
        == [0, 1, 2, 3, 4]


def test_a_record_of_one_execution_from_an_earlier_version_is_still_read():
    sent = with_source(execution("e1", "welcome"), 2, 17, 1)
    assert executions_of(as_read(b"welcome", sent)) == [(2, 17, 1, sent)]


def test_a_record_whose_sources_do_not_match_its_lines_is_refused():
    value = b"\n".join([b"[[0,1,1],[0,2,1]]", execution("e1", "double")])
    with pytest.raises(ValueError, match="2 sources for 1 executions"):
        executions_of(as_read(b"double", value, offset=9))


def test_an_execution_sent_without_a_position_is_placed_by_its_own_offset():
    record = SimpleNamespace(value=b'{"id":"e1:welcome"}', partition=3, offset=41)
    assert source_of(record) == ("executions-3", 41, 0)
