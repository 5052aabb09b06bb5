"""The embedded log's maintenance passes are paced: a pass takes at most its share of the
worker's event loop, so events do not queue behind a compaction."""

from __future__ import annotations

import asyncio

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
