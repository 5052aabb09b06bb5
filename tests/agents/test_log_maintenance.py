"""The embedded log's maintenance passes are paced: a pass takes at most its share of the
worker's event loop, so events do not queue behind a compaction."""

from __future__ import annotations

import asyncio

import faust

from agents import embedded_transport
from agents.embedded_transport import run_paced


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_each_step_is_followed_by_a_sleep_that_keeps_the_pass_to_its_share():
    clock = Clock()
    done = []

    def steps():
        for took in (0.004, 0.010, 0.001):   # the records read by a step cost this much
            clock.now += took
            done.append(took)
            yield 0

    asyncio.run(run_paced(steps(), 0.2, clock=clock, sleep=clock.sleep))
    assert done == [0.004, 0.010, 0.001]
    assert clock.slept == [0.016, 0.04, 0.004]   # 4 idle for 1 busy: a fifth of the time
    assert round(sum(done) / clock.now, 6) == 0.2


def test_a_pass_with_nothing_to_do_does_not_sleep():
    clock = Clock()
    asyncio.run(run_paced(iter(()), 0.2, clock=clock, sleep=clock.sleep))
    assert clock.slept == []


def consumer_with_a_changelog(tmp_path):
    """An embedded consumer whose log holds four versions of one member's state."""
    embedded_transport.register()
    app = faust.App("maintenance-test", broker=f"embedded://{tmp_path / 'log'}",
                    datadir=str(tmp_path), topic_partitions=1)
    consumer = app.consumer
    log = consumer.transport.log
    log.create_topic("members-changelog", 1, compacted=True)
    for version in range(4):
        log.append("members-changelog", 0, b"ann", b"ann-%d" % version)
    return consumer, log


def test_a_process_of_its_own_scans_and_the_worker_deletes(tmp_path):
    consumer, log = consumer_with_a_changelog(tmp_path)
    asyncio.run(consumer._compact("members-changelog"))
    assert [r.value for r in log.read("members-changelog", 0, 0, 10)] == [b"ann-3"]
    assert (tmp_path / "log-compaction-reader").is_dir()   # the scan's secondary instance
    log.close()


def test_when_the_scanning_process_fails_the_worker_compacts_by_itself(tmp_path, monkeypatch):
    consumer, log = consumer_with_a_changelog(tmp_path)

    async def scan_failed(path, topic, ends):
        return None

    monkeypatch.setattr(embedded_transport, "scan_elsewhere", scan_failed)
    asyncio.run(consumer._compact("members-changelog"))
    assert [r.value for r in log.read("members-changelog", 0, 0, 10)] == [b"ann-3"]
    assert not (tmp_path / "log-compaction-reader").exists()
    log.close()
