"""``make bench`` / ``python -m bench``: the benchmarks in one run — the engine's ``apply`` on
one core, then the minimal agent through a worker in embedded and Kafka (tansu) mode.

Each benchmark also runs on its own with its options: ``python -m bench.engine_apply --help``,
``python -m bench.minimal --help``. Figures go to ``bench/RESULTS.md`` by hand, with the
machine and the date; raw results land in ``bench/results/``.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    ["bench.engine_apply"],
    ["bench.minimal", "--mode", "both"],
)


def main() -> int:
    status = 0
    for module in BENCHMARKS:
        print(f"== python -m {' '.join(module)}", flush=True)
        status |= subprocess.call([sys.executable, "-m", *module])
    return status


if __name__ == "__main__":
    sys.exit(main())
