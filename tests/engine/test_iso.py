"""Times in effects and documents: ``iso`` writes what ``datetime.isoformat`` writes, in UTC
with a ``Z`` (receivers and stored records read the same text as before it used orjson)."""

import random
from datetime import datetime, timezone

from engine.events import instant, iso


def isoformat_z(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def test_whole_seconds_have_no_fraction():
    assert iso(1764666000.0) == "2025-12-02T09:00:00Z"


def test_microseconds_are_written_when_there_are_any():
    assert iso(1764666000.25) == "2025-12-02T09:00:00.250000Z"
    assert iso(0.000001) == "1970-01-01T00:00:00.000001Z"


def test_same_text_as_isoformat_over_many_instants():
    rng = random.Random(6)
    instants = [rng.uniform(0, 4e9) for _ in range(20_000)]
    instants += [float(rng.randrange(0, 4_000_000_000)) for _ in range(5_000)]
    assert [iso(t) for t in instants] == [isoformat_z(t) for t in instants]


def test_reads_back_as_the_same_instant():
    assert instant(iso(1764666000.5)) == 1764666000.5
