"""The compiled validator (the hot path of every event read) accepts exactly what ``check``
finds no problem in — over valid events, mutated events and arbitrary JSON."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.engine_apply import Generator
from engine.events import ANY_SCHEMA, PUBLIC_SCHEMA
from engine.program import SCHEMAS
from engine.schema import check, compile_validator

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)

_generator = Generator(200, seed=3)
EXAMPLES = [_generator.next() for _ in range(300)]
for example in EXAMPLES:
    example["time"] = "2026-03-01T08:00:00Z"


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


@st.composite
def mutated_events(draw):
    event = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(event))))
        if not path:
            continue
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return event


def agrees(schema: dict, value) -> bool:
    return compile_validator(schema)(value) == (check(schema, value) == [])


def test_every_example_event_is_valid_both_ways():
    valid = compile_validator(ANY_SCHEMA)
    assert all(valid(event) and not check(ANY_SCHEMA, event) for event in EXAMPLES)


@settings(max_examples=400, deadline=None)
@given(mutated_events())
def test_mutated_events_are_judged_alike(event):
    assert agrees(ANY_SCHEMA, event) and agrees(PUBLIC_SCHEMA, event)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_arbitrary_json_is_judged_alike(value):
    assert agrees(ANY_SCHEMA, value)
    assert all(agrees(schema, value) for schema in SCHEMAS.values())
