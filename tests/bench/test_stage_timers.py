"""The stage timers' slow calls and slow loop turns (bench/stage_timers.py), as a run's report
reads them."""

import asyncio

from bench import stage_timers


def dump(at: float, events: int, local_writes: list, turns: dict) -> dict:
    stages = {label: [0, 0.0, []] for label, *_ in stage_timers.STAGES}
    stages[stage_timers.EVENT_STAGE] = [events, events * 100e-6, []]
    stages["flush: local RocksDB"] = [len(local_writes), sum(s for _, s in local_writes),
                                      local_writes]
    return {"time": at, "loop_cpu_s": events * 200e-6, "stages": stages, "slow_turns": turns}


def test_a_report_counts_the_slow_calls_and_turns_of_its_own_window():
    before = dump(100.0, 1000, [(99.0, 0.030)], {"warm-up": [1, 0.5, [(99.5, 0.5)]]})
    after = dump(130.0, 3000, [(99.0, 0.030), (110.0, 0.012), (120.0, 0.024)],
                 {"warm-up": [1, 0.5, [(99.5, 0.5)]],
                  "Service._execute_task (Agent._execute_actor)": [2, 0.05,
                                                                   [(111.0, 0.02),
                                                                    (121.0, 0.03)]]})

    text = stage_timers.report(before, after)

    local = next(line for line in text.splitlines() if line.startswith("flush: local RocksDB"))
    assert local.split()[-2:] == ["2", "24.0"]  # the warm-up's 30 ms call is not this run's
    assert "Service._execute_task (Agent._execute_actor)" in text
    assert "warm-up" not in text


def test_a_faust_service_task_is_named_after_the_coroutine_it_awaits():
    class Service:
        async def _execute_task(self, task):
            await task

    async def consume_events():
        await asyncio.sleep(0)

    async def name_of_a_step() -> str:
        task = asyncio.ensure_future(Service()._execute_task(consume_events()))
        await asyncio.sleep(0)
        step = type("Step", (), {"__self__": task})()
        name = stage_timers._callback_name(step)
        await task
        return name

    name = asyncio.run(name_of_a_step())
    assert name.endswith("Service._execute_task "
                         "(test_a_faust_service_task_is_named_after_the_coroutine_it_awaits"
                         ".<locals>.consume_events)")
