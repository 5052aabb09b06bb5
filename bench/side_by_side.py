"""Two checkouts of Tillstream compared by running them at the same time.

``python -m bench.side_by_side /path/to/a /path/to/b [--rate 1000] [--rounds 3]``: runs
``python -m bench.open_loop`` in both checkouts at once (same rate, seconds and warm-up), round
after round, and prints each worker's CPU and latency and B's CPU relative to A's.

Why at the same time: this machine's speed drifts by more than the changes we measure. Run
one after the other, the same build's worker spent 22–29 s of CPU on the same 30 s of work,
and a profile of the same code showed even untouched functions 20–28 % cheaper in one run than
in another. Run together, both workers see the same machine, so the ratio of their CPU
seconds holds steady where the seconds themselves do not. Each worker gets half the machine,
so keep the rate at about half of what one worker sustains (1,000 events/s for the loyalty
workload over HTTP); the latencies are then those of a shared machine and compare only with
each other.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path


def open_loop(checkout: Path, opts: argparse.Namespace) -> subprocess.Popen:
    python = checkout / ".venv" / "bin" / "python"
    return subprocess.Popen(
        [str(python if python.exists() else sys.executable), "-m", "bench.open_loop",
         "--rate", str(opts.rate), "--seconds", str(opts.seconds), "--warm", str(opts.warm)],
        cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def result_of(process: subprocess.Popen) -> dict:
    """The dict ``bench.open_loop`` prints last."""
    out, _ = process.communicate()
    lines = out.strip().splitlines()
    if process.returncode or not lines:
        raise SystemExit(f"open loop failed (exit {process.returncode}): {out[-2000:]}")
    return ast.literal_eval(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path, help="checkout A (the baseline)")
    parser.add_argument("b", type=Path, help="checkout B")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warm", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    ratios = []
    for round_no in range(1, opts.rounds + 1):
        runs = [open_loop(opts.a, opts), open_loop(opts.b, opts)]
        a, b = (result_of(run) for run in runs)
        cpu_a, cpu_b = a["thread_cpu_s"]["python"], b["thread_cpu_s"]["python"]
        ratios.append(cpu_b / cpu_a)
        print(f"round {round_no}: A {cpu_a:.2f} s CPU, p50/p99 {a['p50_ms']}/{a['p99_ms']} ms; "
              f"B {cpu_b:.2f} s CPU, p50/p99 {b['p50_ms']}/{b['p99_ms']} ms; "
              f"B/A CPU {cpu_b / cpu_a:.3f}", flush=True)
    print(f"B/A CPU over {opts.rounds} rounds: {min(ratios):.3f}–{max(ratios):.3f}")


if __name__ == "__main__":
    main()
