"""Measuring helpers shared by the stream benchmarks: process CPU and peak RSS from /proc,
Prometheus scrapes and histogram percentiles, the peers' latency histograms, machine facts."""

from __future__ import annotations

import asyncio
import math
import os
import platform
import re
import time
from pathlib import Path

# -- processes ----------------------------------------------------------------------------------


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of a process, or of its thread ``tid`` (Linux /proc), 0.0 when
    unavailable."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of a live process in MiB, 0.0 when unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return 0.0


class ProcessWatch:
    """CPU seconds between ``start()`` and ``stop()`` and the peak RSS of some processes."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.cpu0 = {pid: cpu_seconds(pid) for pid in pids}
        self.t0 = time.perf_counter()
        self.result: dict = {}

    def stop(self) -> dict:
        elapsed = time.perf_counter() - self.t0
        cpu = sum(cpu_seconds(pid) - self.cpu0[pid] for pid in self.pids)
        self.result = {"cpu_s": round(cpu, 2),
                       "cpu_pct_of_one_core": round(100 * cpu / elapsed, 1) if elapsed else None,
                       "peak_rss_mib": round(sum(peak_rss_mib(pid) for pid in self.pids), 1)}
        return self.result


class OpenLoopSchedule:
    """A fixed sending schedule, whatever the receiver does (an open loop): iterate to get,
    every ``tick`` seconds, how many of ``total`` items are due by then at ``rate`` per second.
    ``max_behind`` is how late a tick ever came (the sender itself falling behind)."""

    def __init__(self, rate: float, total: int, tick: float) -> None:
        self.rate, self.total, self.tick = rate, total, tick
        self.max_behind = 0.0
        self.seconds = 0.0

    async def __aiter__(self):
        began = time.perf_counter()
        k = 0
        due = 0
        while due < self.total:
            k += 1
            delay = began + k * self.tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.max_behind = max(self.max_behind, -delay)
            due = min(self.total, int((time.perf_counter() - began) * self.rate) + 1)
            yield due
            self.seconds = time.perf_counter() - began


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def machine() -> dict:
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    for name in ("faust", "aiokafka", "rocksdict", "quixstreams"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except Exception:  # noqa: BLE001 - an optional peer
            versions[name] = None
    return {"cpus": os.cpu_count(), "mem_gib": round(mem_kib / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform(), **versions}


# -- Prometheus ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfINFNa]+)')
_LE = re.compile(r'le="([^"]+)"')


def parse_prometheus(text: str) -> dict:
    """``{"events": total of tillstream_events_total, "buckets": {le: cumulative count},
    "count": n, "sum": s}`` for ``tillstream_event_to_effect_seconds`` (summed over labels)."""
    events = 0.0
    lag = 0.0
    lag_series = 0
    outcomes: dict[str, float] = {}
    types: dict[str, float] = {}
    buckets: dict[float, float] = {}
    count = total = 0.0
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        if name == "tillstream_events_total":
            events += value
            kind = re.search(r'type="([^"]*)"', labels)
            if kind:
                types[kind.group(1)] = types.get(kind.group(1), 0.0) + value
            outcome = re.search(r'outcome="([^"]*)"', labels)
            if outcome:
                outcomes[outcome.group(1)] = outcomes.get(outcome.group(1), 0.0) + value
        elif name == "tillstream_consumer_lag" and '-events"' in labels:
            lag += value
            lag_series += 1
        elif name == "tillstream_event_to_effect_seconds_bucket":
            le = _LE.search(labels)
            if le:
                bound = math.inf if le.group(1) in ("+Inf", "inf") else float(le.group(1))
                buckets[bound] = buckets.get(bound, 0.0) + value
        elif name == "tillstream_event_to_effect_seconds_count":
            count += value
        elif name == "tillstream_event_to_effect_seconds_sum":
            total += value
    return {"events": events, "outcomes": outcomes, "types": types, "buckets": buckets,
            "count": count,
            "sum": total, "lag": lag, "lag_series": lag_series}


def merge_scrapes(scrapes: list[dict]) -> dict:
    out = {"events": 0.0, "outcomes": {}, "types": {}, "buckets": {}, "count": 0.0,
           "sum": 0.0, "lag": 0.0, "lag_series": 0}
    for scrape in scrapes:
        out["events"] += scrape["events"]
        out["lag"] += scrape["lag"]
        out["lag_series"] += scrape["lag_series"]
        for outcome, value in scrape["outcomes"].items():
            out["outcomes"][outcome] = out["outcomes"].get(outcome, 0.0) + value
        for kind, value in scrape.get("types", {}).items():
            out["types"][kind] = out["types"].get(kind, 0.0) + value
        out["count"] += scrape["count"]
        out["sum"] += scrape["sum"]
        for bound, value in scrape["buckets"].items():
            out["buckets"][bound] = out["buckets"].get(bound, 0.0) + value
    return out


def histogram_percentiles(before: dict, after: dict,
                          quantiles=(0.5, 0.99, 0.999)) -> dict:
    """Percentiles (ms) of the observations between two scrapes, interpolated linearly inside
    the cumulative Prometheus buckets (the upper bound when it falls in the +Inf bucket)."""
    bounds = sorted(after["buckets"])
    cumulative = [after["buckets"][b] - before["buckets"].get(b, 0.0) for b in bounds]
    n = cumulative[-1] if cumulative else 0.0
    out: dict = {"observations": int(n)}
    if n <= 0:
        return out
    out["mean_ms"] = round(1000 * (after["sum"] - before["sum"]) / n, 3)
    finite = [b for b in bounds if b != math.inf]
    for q in quantiles:
        rank = q * n
        previous_bound, previous_count = 0.0, 0.0
        value = None
        for bound, count in zip(bounds, cumulative):
            if count >= rank:
                if bound == math.inf:
                    value = finite[-1] if finite else None
                    out[f"p{_qname(q)}_above_top_bucket"] = True
                else:
                    span = count - previous_count
                    fraction = (rank - previous_count) / span if span else 1.0
                    value = previous_bound + (bound - previous_bound) * fraction
                break
            previous_bound, previous_count = bound, count
        out[f"p{_qname(q)}_ms"] = None if value is None else round(1000 * value, 3)
    return out


def exact_percentiles(milliseconds: list[float],
                      quantiles=(0.5, 0.99, 0.999)) -> dict:
    """``p50_ms``... of every value measured (not a histogram's estimate); empty for none."""
    if not milliseconds:
        return {}
    ordered = sorted(milliseconds)
    return {f"p{_qname(q)}_ms": round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)
            for q in quantiles}


def _qname(q: float) -> str:
    return {0.5: "50", 0.99: "99", 0.999: "999"}.get(q, str(q).replace("0.", ""))


# -- the peers' latency histograms --------------------------------------------------------------
# Log buckets: index i holds latencies in [10^(i/PER_DECADE - 6), 10^((i+1)/PER_DECADE - 6)) s,
# so 1 µs .. 10^4 s in 500 buckets of ~4.7 % width.

PER_DECADE = 50
BUCKETS = 500


def bucket_of(seconds: float) -> int:
    if seconds <= 1e-6:
        return 0
    index = int((math.log10(seconds) + 6) * PER_DECADE)
    return BUCKETS - 1 if index >= BUCKETS else index


def log_histogram_percentiles(before: list[int] | None, after: list[int],
                              quantiles=(0.5, 0.99, 0.999)) -> dict:
    counts = [a - (before[i] if before else 0) for i, a in enumerate(after)]
    n = sum(counts)
    out: dict = {"observations": n}
    if n <= 0:
        return out
    for q in quantiles:
        rank = q * n
        seen = 0
        for index, count in enumerate(counts):
            if count and seen + count >= rank:
                low = 10 ** (index / PER_DECADE - 6)
                high = 10 ** ((index + 1) / PER_DECADE - 6)
                value = low + (high - low) * (rank - seen) / count
                out[f"p{_qname(q)}_ms"] = round(1000 * value, 3)
                break
            seen += count
    return out
