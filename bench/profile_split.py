"""Where a worker's time goes by the kind of code running: ``python -m bench.profile_split FILE``.

Reads a py-spy profile in its raw format (collapsed stacks: ``frame;frame;... count`` per
line), as ``python -m bench.open_loop --py-spy FILE`` records it with ``--native``, and sums
the samples by the innermost frame: Python bytecode (faust, asyncio, aiohttp and our agents
and tables), the mypyc-compiled engine, orjson, RocksDB, the garbage collector, the C library
(malloc, memcpy, system calls) and the rest of CPython's C runtime.

Why: stage timers (bench/stage_timers.py) say which stage costs what, not how much of it is
the interpreter. This split bounds what compiling or removing Python glue could gain: if
every sample of Python bytecode vanished, the rest would still run.
"""

from __future__ import annotations

import argparse
import re
from typing import Iterable

_PYTHON_FRAME = re.compile(r"\.py(:\d+)?\)$|^<lambda> \(<string>|\(<frozen ")

#: (kind, substrings of a native frame that mark it), checked in order.
NATIVE_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # mypyc's C and the refcount helpers it inlines (py-spy names them by their header)
    ("compiled engine (mypyc)", ("__native", "CPy", "_ops.c", "pythoncapi_compat", "object.h")),
    ("orjson", ("orjson",)),
    ("RocksDB (rocksdict)", ("rocksdict", "rocksdb")),
    ("garbage collector", ("gc_",)),
    ("C library (malloc, memcpy, system calls)", ("libc.so", "malloc", "libm.so")),
    ("CPython runtime in C", ("libpython", "module.c", "object.c", ".c)")),
)
PYTHON = "Python bytecode"
OTHER = "other"


def kind_of(leaf: str) -> str:
    """The kind of code an innermost frame runs."""
    if _PYTHON_FRAME.search(leaf):
        return PYTHON
    for kind, marks in NATIVE_KINDS:
        if any(mark in leaf for mark in marks):
            return kind
    return OTHER


def split(lines: Iterable[str]) -> dict[str, int]:
    """Samples per kind of code, from collapsed-stack lines."""
    samples: dict[str, int] = {}
    for line in lines:
        line = line.rstrip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        kind = kind_of(stack.rsplit(";", 1)[-1])
        samples[kind] = samples.get(kind, 0) + int(count)
    return samples


def report(samples: dict[str, int]) -> str:
    total = sum(samples.values())
    rows = [f"{'kind of code (innermost frame)':<45} {'samples':>8} {'share':>7}"]
    for kind, count in sorted(samples.items(), key=lambda item: -item[1]):
        rows.append(f"{kind:<45} {count:>8,} {count / total:>7.1%}")
    native = total - samples.get(PYTHON, 0)
    rows.append(f"without any Python bytecode the rest would run {total / native:.2f}x as fast"
                if native else "every sample is Python bytecode")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_split", description=__doc__)
    parser.add_argument("profile", help="py-spy raw profile (collapsed stacks, --native)")
    opts = parser.parse_args()
    with open(opts.profile, encoding="utf-8") as lines:
        print(report(split(lines)))


if __name__ == "__main__":
    main()
