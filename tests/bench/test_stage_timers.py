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


def test_a_report_says_what_its_slow_turns_ran():
    before = dump(100.0, 1000, [], {})
    before["slow_turn_contents"] = [(99.0, 0.5, {"flush: local RocksDB": [1, 0.4]})]
    after = dump(130.0, 3000, [], {})
    after["slow_turn_contents"] = before["slow_turn_contents"] + [
        (110.0, 0.020, {stage_timers.EVENT_STAGE: [60, 0.012],
                        "validate (parse_event)": [60, 0.002],
                        "flush: local RocksDB": [1, 0.004]}),
        (120.0, 0.030, {stage_timers.EVENT_STAGE: [150, 0.025]}),
    ]

    lines = stage_timers.report(before, after).splitlines()

    start = next(index for index, line in enumerate(lines) if line.startswith("what those"))
    assert lines[start].startswith("what those 2 turns ran (0.050 s; 210 events through the "
                                   "member agent, at most 150 in one turn)")
    held = {line[:62].strip(): line[62:].split()[0] for line in lines[start + 1:]}
    assert held == {stage_timers.EVENT_STAGE: "0.037", "flush: local RocksDB": "0.004",
                    "outside the stages (faust, asyncio, HTTP)": "0.009"}
