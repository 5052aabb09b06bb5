"""Executions reach the scenario history with the position of the event that ran them."""

from __future__ import annotations

from types import SimpleNamespace

import orjson

from agents.member_agent import with_source
from agents.scenario_history import source_of


def test_an_execution_is_sent_with_its_event_position_and_read_back():
    sent = with_source(orjson.dumps({"id": "e1:welcome", "scenario": "welcome"}), 2, 17, 1)
    assert orjson.loads(sent) == {"id": "e1:welcome", "scenario": "welcome",
                                  "source": [2, 17, 1]}
    assert source_of(SimpleNamespace(value=sent, partition=0, offset=5)) == (2, 17, 1)


def test_an_execution_sent_without_a_position_is_placed_by_its_own_offset():
    record = SimpleNamespace(value=b'{"id":"e1:welcome"}', partition=3, offset=41)
    assert source_of(record) == ("executions-3", 41, 0)
