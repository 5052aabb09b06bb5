"""Where a loyalty worker's time goes, stage by stage: ``python -m bench.stage_timers worker``
runs a worker, as ``python -m agents.cli worker`` does, with timers around the functions of
its per-event and per-batch path (:data:`STAGES`). Every half second it writes their totals
(calls, seconds) to the JSON file named by ``TILLSTREAM_STAGE_TIMERS``, with the CPU seconds
of its event-loop thread. ``python -m bench.open_loop --stages`` reads that file before and
after its run and prints the table (:func:`report`).

Why timers and not only py-spy: a sampling profile gives shares of the samples, not
microseconds per event, and it cannot see inside the compiled engine; a timer per stage gives
both, and two runs (a different rate, another request size) can be set side by side.

Every stage is timed with ``perf_counter`` around a call that does not give the event loop
away — in embedded mode none of the wrapped coroutines suspend — so a stage's time is CPU time
of the loop thread (unless the machine preempts it). Stages nest: an indented stage runs
inside the stage above it, and its time is part of that stage's. The top-level stages do not
overlap; what they leave of the loop thread's CPU is faust's and asyncio's plumbing, the HTTP
server, webhook deliveries and the rest (``unattributed``). A timer costs about half a
microsecond per call, so a worker runs a few percent slower with them.
"""

from __future__ import annotations

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


def _wrap(function: Callable, account: list) -> Callable:
    clock = time.perf_counter
    if inspect.iscoroutinefunction(function):
        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            began = clock()
            try:
                return await function(*args, **kwargs)
            finally:
                account[0] += 1
                account[1] += clock() - began
        return timed_coroutine

    def timed(*args: Any, **kwargs: Any) -> Any:
        began = clock()
        try:
            return function(*args, **kwargs)
        finally:
            account[0] += 1
            account[1] += clock() - began
    return timed


def install(path: Path, interval: float = WRITE_EVERY) -> dict[str, list]:
    """Wrap every stage and write the totals to ``path`` every ``interval`` seconds and at
    exit; returns the live totals (label -> [calls, seconds])."""
    totals: dict[str, list] = {}
    for label, module_name, attribute, _ in STAGES:
        owner: Any = importlib.import_module(module_name)
        *outer, name = attribute.split(".")
        for part in outer:
            owner = getattr(owner, part)
        account = totals[label] = [0, 0.0]
        setattr(owner, name, _wrap(getattr(owner, name), account))
    pid, loop_tid = os.getpid(), threading.get_native_id()

    def dump() -> None:
        document = {"time": time.time(), "loop_cpu_s": cpu_seconds(pid, loop_tid),
                    "stages": totals}
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


def report(before: dict, after: dict) -> str:
    """The stages between two dumps: µs per event and share of the loop thread's CPU."""
    def delta(label: str) -> tuple[int, float]:
        calls0, seconds0 = before["stages"].get(label, (0, 0.0))
        calls1, seconds1 = after["stages"][label]
        return calls1 - calls0, seconds1 - seconds0

    events = delta(EVENT_STAGE)[0]
    loop_cpu = after["loop_cpu_s"] - before["loop_cpu_s"]
    lines = [f"{events:,} events through the member agent; event-loop thread CPU {loop_cpu:.2f} s"
             f" = {loop_cpu / max(events, 1) * 1e6:.0f} µs per event",
             f"{'stage':<46} {'calls':>9} {'µs/call':>8} {'µs/event':>9} {'% loop':>7}"]
    top = 0.0
    for label, _, _, depth in STAGES:
        calls, seconds = delta(label)
        if depth == 0:
            top += seconds
        lines.append(f"{'  ' * depth + label:<46} {calls:>9,} "
                     f"{seconds / max(calls, 1) * 1e6:>8.1f} "
                     f"{seconds / max(events, 1) * 1e6:>9.1f} "
                     f"{seconds / max(loop_cpu, 1e-9) * 100:>6.1f}%")
    rest = loop_cpu - top
    lines.append(f"{'unattributed (faust, asyncio, HTTP, webhooks)':<46} {'':>9} {'':>8} "
                 f"{rest / max(events, 1) * 1e6:>9.1f} {rest / max(loop_cpu, 1e-9) * 100:>6.1f}%")
    return "\n".join(lines)


def main() -> None:
    path = os.environ.get("TILLSTREAM_STAGE_TIMERS")
    if not path:
        sys.exit("TILLSTREAM_STAGE_TIMERS must name the file the totals go to")
    install(Path(path))
    from agents.cli import main as worker_main
    worker_main(sys.argv[1:])


if __name__ == "__main__":
    main()
