"""Where a loyalty worker's time goes, stage by stage: ``python -m bench.stage_timers worker``
runs a worker, as ``python -m agents.cli worker`` does, with timers around the functions of
its per-event and per-batch path (:data:`STAGES`). Every half second it writes their totals
(calls, seconds) to the JSON file named by ``TILLSTREAM_STAGE_TIMERS``, with the CPU seconds
of its event-loop thread. ``python -m bench.open_loop --stages`` reads that file before and
after its run and prints the table (:func:`report`).

Why timers and not only py-spy: a sampling profile gives shares of the samples, not
microseconds per event, and it cannot see inside the compiled engine; a timer per stage gives
both, and two runs (a different rate, another request size) can be set side by side.

Latency is made of the long turns: besides the totals, every stage counts its calls of
:data:`SLOW` or more and its slowest, and every turn of the event loop (one callback, such as
a task's step from one await to the next) that takes :data:`SLOW` or more is counted under
the coroutine it ran, with the stages it ran and the events it handled, so a run's p99 can be
set against what held the loop.

Every stage is timed with ``perf_counter`` around a call that does not give the event loop
away — in embedded mode none of the wrapped coroutines suspend — so a stage's time is CPU time
of the loop thread (unless the machine preempts it). Stages nest: an indented stage runs
inside the stage above it, and its time is part of that stage's. The top-level stages do not
overlap; what they leave of the loop thread's CPU is faust's and asyncio's plumbing, the HTTP
server, webhook deliveries and the rest (``unattributed``). A timer costs about half a
microsecond per call, so a worker runs a few percent slower with them.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import inspect
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from bench.measure import cpu_seconds

#: ``(label, module, attribute, depth)``: the attribute (``Class.method`` or a module global,
#: which is how ``agents.member_agent`` calls the engine) is wrapped in place. Depth 0 stages
#: are disjoint; a deeper stage runs inside the nearest shallower one above it.
STAGES: tuple[tuple[str, str, str, int], ...] = (
    ("member agent, per event", "agents.member_agent", "MemberProcessor.process", 0),
    ("validate (parse_event)", "agents.member_agent", "parse_event", 1),
    ("read a checked event (checked_event)", "agents.member_agent", "checked_event", 1),
    ("apply and its effects", "agents.member_agent", "MemberProcessor.apply", 1),
    ("read state (get_stored)", "tables.members", "MemberStore.get_stored", 2),
    ("decode state", "tables.members", "decode_stored", 3),
    ("engine apply", "agents.member_agent", "apply", 2),
    ("ledger entry to_dict", "engine.effects", "LedgerEntry.to_dict", 2),
    ("execution to_dict", "engine.effects", "Execution.to_dict", 2),
    ("send effect (Outgoing.send)", "agents.outgoing", "Outgoing.send", 2),
    ("executions record (BatchExecutions.add)", "agents.member_agent", "BatchExecutions.add",
     2),
    ("analytics deltas", "agents.member_agent", "analytics_deltas", 2),
    ("analytics record (BatchAnalytics.add)", "agents.member_agent", "BatchAnalytics.add", 2),
    ("state and pages to the batch (record)", "tables.members", "MemberStore.record", 2),
    ("due times (set_due)", "tables.timers", "TimerIndex.set_due", 2),
    ("flush: changelog records", "tables.batch_store", "BatchStore._send_changelog", 0),
    ("encode state", "tables.members", "encode_stored", 1),
    ("flush: local RocksDB", "tables.batch_store", "BatchStore._write_local", 0),
    ("log: write (write_pending)", "agents.embedded_transport", "Producer.write_pending", 0),
    ("log: read (Consumer._read)", "agents.embedded_transport", "Consumer._read", 0),
    ("HTTP: validate events", "api.events", "validate_batch", 0),
    ("analytics agent (Aggregates.apply)", "agents.analytics", "Aggregates.apply", 0),
    ("scenario history (append_from)", "tables.paged_lists", "PagedLists.append_from", 0),
    ("garbage collector (collect_if_due)", "agents.batching", "collect_if_due", 0),
    ("metrics scrape (generate_latest)", "api.metrics", "generate_latest", 0),
)

#: The stage whose calls count the events (the denominator of "µs per event").
EVENT_STAGE = "member agent, per event"
#: Seconds between two writes of the totals.
WRITE_EVERY = 0.5
#: A call or a turn of the event loop this long (seconds) or longer is counted as slow.
SLOW = 0.010
#: Slow calls kept per stage (the oldest go first): enough for any run this measures.
SLOW_KEPT = 20_000
#: The stages timed in the event-loop turn running now: label -> [calls, seconds].
_in_turn: dict[str, list] = {}


def _add(account: list, spent: float) -> None:
    """``account``: [calls, seconds, slow calls as (wall-clock time, seconds)]."""
    account[0] += 1
    account[1] += spent
    if spent >= SLOW:
        slow = account[2]
        slow.append((time.time(), spent))
        if len(slow) > SLOW_KEPT:
            del slow[:len(slow) - SLOW_KEPT]


def _count_in_turn(label: str, spent: float) -> None:
    held = _in_turn.get(label)
    if held is None:
        _in_turn[label] = [1, spent]
    else:
        held[0] += 1
        held[1] += spent


def _wrap(function: Callable, account: list, label: str) -> Callable:
    clock = time.perf_counter
    if inspect.iscoroutinefunction(function):
        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return await function(*args, **kwargs)
            finally:
                spent = clock() - began
                _add(account, spent)
                _count_in_turn(label, spent)
        return timed_coroutine

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent = clock() - began
            _add(account, spent)
            _count_in_turn(label, spent)
    return timed


def _qualname(thing: Any) -> str:
    return getattr(thing, "__qualname__", type(thing).__name__)


def _callback_name(callback: Any) -> str:
    """What a loop callback runs: a task's coroutine, else the function. Every faust agent
    and service loop runs in a ``Service._execute_task`` task; the coroutine it awaits names
    it."""
    task = getattr(callback, "__self__", None)
    get_coro = getattr(task, "get_coro", None)
    if get_coro is None:
        return _qualname(callback)
    coro = get_coro()
    name = _qualname(coro)
    frame = getattr(coro, "cr_frame", None)
    if frame is not None and name.endswith("Service._execute_task"):
        name += f" ({_qualname(frame.f_locals.get('task'))})"
    return name


def _time_loop_turns(slow_turns: dict[str, list], contents: list) -> None:
    """Count every turn of the event loop of :data:`SLOW` or more under what it ran, and keep
    what it held in ``contents``: (wall-clock time, seconds, {stage label: [calls,
    seconds]})."""
    original = asyncio.events.Handle._run
    clock = time.perf_counter

    def _run(handle: asyncio.events.Handle) -> None:
        _in_turn.clear()
        began = clock()
        try:
            original(handle)
        finally:
            spent = clock() - began
            if spent >= SLOW:
                name = _callback_name(handle._callback)
                account = slow_turns.get(name)
                if account is None:
                    account = slow_turns[name] = [0, 0.0, []]
                _add(account, spent)
                contents.append((time.time(), spent, dict(_in_turn)))
                if len(contents) > SLOW_KEPT:
                    del contents[:len(contents) - SLOW_KEPT]

    asyncio.events.Handle._run = _run  # type: ignore[method-assign]


def install(path: Path, interval: float = WRITE_EVERY) -> dict[str, list]:
    """Wrap every stage and write the totals to ``path`` every ``interval`` seconds and at
    exit; returns the live totals (label -> [calls, seconds, slow calls], see :func:`_add`)."""
    totals: dict[str, list] = {}
    for label, module_name, attribute, _ in STAGES:
        owner: Any = importlib.import_module(module_name)
        *outer, name = attribute.split(".")
        for part in outer:
            owner = getattr(owner, part)
        account = totals[label] = [0, 0.0, []]
        setattr(owner, name, _wrap(getattr(owner, name), account, label))
    slow_turns: dict[str, list] = {}
    slow_turn_contents: list = []
    _time_loop_turns(slow_turns, slow_turn_contents)
    pid, loop_tid = os.getpid(), threading.get_native_id()

    def dump() -> None:
        document = {"time": time.time(), "loop_cpu_s": cpu_seconds(pid, loop_tid),
                    "stages": totals, "slow_turns": dict(slow_turns),
                    "slow_turn_contents": list(slow_turn_contents)}
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(document))
        temporary.replace(path)

    def keep_dumping() -> None:
        while True:
            time.sleep(interval)
            dump()

    threading.Thread(target=keep_dumping, name="stage-timers", daemon=True).start()
    atexit.register(dump)
    return totals


def read(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def read_after_next_write(path: Path) -> dict:
    """The totals once the worker has written them again: they then cover what it has just
    done."""
    time.sleep(2 * WRITE_EVERY)
    return read(path)


def _delta(before: list | None, after: list, since: float
           ) -> tuple[int, float, int, float, float]:
    """Calls and seconds between two dumps; the slow calls made after ``since`` (the earlier
    dump's time): how many, their seconds, the slowest."""
    calls0, seconds0 = (before or (0, 0.0))[:2]
    slow = [spent for at, spent in after[2] if at > since]
    return (after[0] - calls0, after[1] - seconds0, len(slow), sum(slow),
            max(slow, default=0.0))


def report(before: dict, after: dict) -> str:
    """The stages between two dumps: µs per event, share of the loop thread's CPU, calls of
    :data:`SLOW` or more; then the loop's slow turns by what they ran."""
    stages0, since = before["stages"], before["time"]
    events = _delta(stages0.get(EVENT_STAGE), after["stages"][EVENT_STAGE], since)[0]
    loop_cpu = after["loop_cpu_s"] - before["loop_cpu_s"]
    slow_ms = f"≥{SLOW * 1000:.0f} ms"
    lines = [f"{events:,} events through the member agent; event-loop thread CPU {loop_cpu:.2f} s"
             f" = {loop_cpu / max(events, 1) * 1e6:.0f} µs per event",
             f"{'stage':<46} {'calls':>9} {'µs/call':>8} {'µs/event':>9} {'% loop':>7} "
             f"{slow_ms:>7} {'max ms':>7}"]
    top = 0.0
    for label, _, _, depth in STAGES:
        calls, seconds, slow, _, slowest = _delta(stages0.get(label), after["stages"][label],
                                                  since)
        if depth == 0:
            top += seconds
        lines.append(f"{'  ' * depth + label:<46} {calls:>9,} "
                     f"{seconds / max(calls, 1) * 1e6:>8.1f} "
                     f"{seconds / max(events, 1) * 1e6:>9.1f} "
                     f"{seconds / max(loop_cpu, 1e-9) * 100:>6.1f}% {slow:>7,} "
                     f"{slowest * 1000:>7.1f}")
    rest = loop_cpu - top
    lines.append(f"{'unattributed (faust, asyncio, HTTP, webhooks)':<46} {'':>9} {'':>8} "
                 f"{rest / max(events, 1) * 1e6:>9.1f} {rest / max(loop_cpu, 1e-9) * 100:>6.1f}%")
    turns0 = before.get("slow_turns", {})
    turns = sorted(((name, _delta(turns0.get(name), account, since))
                    for name, account in after.get("slow_turns", {}).items()),
                   key=lambda item: -item[1][3])
    turns = [(name, figures) for name, figures in turns if figures[2]]
    if turns:
        lines.append(f"event-loop turns of {slow_ms}, by what they ran "
                     f"(turns, seconds, slowest ms):")
        lines.extend(f"  {name:<60} {figures[2]:>7,} {figures[3]:>8.2f} {figures[4] * 1000:>8.1f}"
                     for name, figures in turns[:12])
    lines.extend(_slow_turn_contents(after.get("slow_turn_contents", []), since))
    return "\n".join(lines)


def _slow_turn_contents(contents: list, since: float) -> list[str]:
    """What the slow turns since ``since`` ran: the top-level stages' seconds in them, the
    member agent's events with the most in one turn, and what no stage accounts for."""
    turns = [(spent, held) for at, spent, held in contents if at > since]
    if not turns:
        return []
    seconds: dict[str, float] = {}
    for _, held in turns:
        for label, (_, spent) in held.items():
            seconds[label] = seconds.get(label, 0.0) + spent
    events = [held.get(EVENT_STAGE, (0, 0.0))[0] for _, held in turns]
    total = sum(spent for spent, _ in turns)
    top = [label for label, _, _, depth in STAGES if depth == 0 and seconds.get(label)]
    lines = [f"what those {len(turns):,} turns ran ({total:.3f} s; {sum(events):,} events "
             f"through the member agent, at most {max(events):,} in one turn):"]
    lines.extend(f"  {label:<60} {seconds[label]:>8.3f} s {seconds[label] / total * 100:>5.1f}%"
                 for label in sorted(top, key=lambda label: -seconds[label]))
    rest = total - sum(seconds[label] for label in top)
    lines.append(f"  {'outside the stages (faust, asyncio, HTTP)':<60} {rest:>8.3f} s "
                 f"{rest / total * 100:>5.1f}%")
    return lines


def main() -> None:
    path = os.environ.get("TILLSTREAM_STAGE_TIMERS")
    if not path:
        sys.exit("TILLSTREAM_STAGE_TIMERS must name the file the totals go to")
    install(Path(path))
    from agents.cli import main as worker_main
    worker_main(sys.argv[1:])


if __name__ == "__main__":
    main()
