"""``make bench`` / ``python -m bench``: every benchmark in one invocation, on the same seeded
events (issue 6).

Engines (``--only`` picks a comma-separated subset, default all):

- ``engine-apply``          the pure engine on one core (``bench.engine_apply``, a subprocess)
- ``tillstream-embedded``   loyalty workload, embedded mode, 1 worker (throughput + latency)
- ``tillstream-kafka``      loyalty workload, Kafka mode on tansu, 1 worker (throughput + latency)
- ``tillstream-kafka-2w``   loyalty workload, Kafka mode on tansu, 2 workers (throughput)
- ``tillstream-minimal``    minimal workload through ``TILLSTREAM_PIPELINE=minimal`` (embedded
                            and Kafka, throughput + latency)
- ``faust-naive``, ``quix``, ``raw``   the peers on the minimal workload (``bench/peers/``)
- ``recovery``              1M members' recovery (embedded) and GET /v1/members p99 under load

Results: ``bench/results/stream-<date>.json`` (``stream-quick-<date>.json`` with ``--quick``),
the plot ``bench/results/bench-<date>.png`` and a markdown table on stdout (also saved as
``bench/results/stream-<date>.md``). ``--quick`` is a smoke run of a few minutes (about 6 on this machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import stream as st
from bench.measure import loadavg, machine
from bench.plot import plot

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ALL = ("engine-apply", "tillstream-embedded", "tillstream-kafka", "tillstream-kafka-2w",
       "tillstream-minimal", "faust-naive", "quix", "raw", "recovery")
PEER_NAMES = {"faust-naive": "faust-naive", "quix": "quix", "raw": "raw-aiokafka-rocksdict"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(ALL), help="comma-separated engines (see above)")
    p.add_argument("--quick", action="store_true", help="a short smoke run (small counts)")
    p.add_argument("--events", type=int, help="measured events (default 60000; quick 4000)")
    p.add_argument("--target-seconds", type=float,
                   help="size each Tillstream loyalty throughput run to about this many seconds "
                        "at the pace of its warm-up, at most --events (default 120: the warm-up "
                        "pace, HTTP joins, underrates Kafka mode, whose 40 s runs lasted 7-10 s "
                        "and overstated the peak the latency runs take halves of; quick 10)")
    p.add_argument("--calibration-joins", type=int, default=1500,
                   help="warm-up joins fed first to measure the pace (sizes the measured part)")
    p.add_argument("--minimal-events", type=int,
                   help="events of the minimal-workload runs: Tillstream's minimal pipeline, "
                        "quix and raw (default 600000, the loyalty stream's minimal form "
                        "repeated under new ids; quick 20000)")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of every throughput run (default 1). With more, the engines "
                        "run in turn round after round, the latency runs only in the last "
                        "round (every round with --repeat-latency), at fractions of the median "
                        "peak, and the table gives each "
                        "engine's median events/s and the targets' ratios as the median of "
                        "each round's (this machine is shared: one run moves by 20%%)")
    p.add_argument("--repeat-latency", action="store_true",
                   help="with --repeat: the latency runs in every round too (each at "
                        "fractions of the median peak of the rounds so far), and the table "
                        "gives the median p50/p99/p999 of the rounds")
    p.add_argument("--faust-events", type=int,
                   help="events for the naive faust peer (default 15000; quick 2000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--latency-duration", type=float,
                   help="seconds of each open-loop latency run (default 20; quick 4; 0 = none)")
    p.add_argument("--fractions", default="0.5,0.8", help="fractions of the peak rate")
    p.add_argument("--max-rate", type=float, default=25000,
                   help="cap of the open-loop producer's rate (events/s)")
    p.add_argument("--timeout", type=float, default=420.0,
                   help="seconds to wait for a throughput run or a warm-up")
    p.add_argument("--recovery-members", type=int,
                   help="members in the recovery run (default 1000000; quick 20000)")
    p.add_argument("--http-rate", type=float, default=1000.0)
    p.add_argument("--http-duration", type=float, help="seconds (default 10; quick 3)")
    p.add_argument("--engine-apply-events", type=int,
                   help="events of bench.engine_apply (default 100000; quick 10000)")
    p.add_argument("--date", default=dt.date.today().isoformat())
    p.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    p.add_argument("--stages", action="store_true",
                   help="tillstream-embedded: time the worker's stages (bench/stage_timers.py) "
                        "during the throughput run and print where its time went, per event")
    return p


def _defaults(args) -> None:
    quick = args.quick
    for name, full, small in (("events", 60_000, 4_000), ("minimal_events", 600_000, 20_000),
                              ("faust_events", 15_000, 2_000),
                              ("target_seconds", 120.0, 10.0),
                              ("latency_duration", 20.0, 4.0),
                              ("recovery_members", 1_000_000, 20_000),
                              ("http_duration", 10.0, 3.0),
                              ("engine_apply_events", 100_000, 10_000)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.fractions = tuple(float(f) for f in args.fractions.split(","))
    if args.repeat < 1:
        sys.exit("--repeat must be at least 1")


def run_engine_apply(args) -> dict:
    members = 5_000 if args.quick else 50_000
    command = [sys.executable, "-m", "bench.engine_apply", "--events",
               str(args.engine_apply_events), "--members", str(members), "--seed",
               str(args.seed)]
    began = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True)
    figures = {}
    for line in out.stdout.splitlines():
        if "events per CPU second" in line:
            label, rest = line.split(":", 1)
            figures[label.strip()] = float(rest.split("events")[0].replace(",", "").strip())
    st.log(f"engine-apply: {figures}")
    return {"engine": "engine-apply", "command": " ".join(command[1:]),
            "events_per_cpu_s": figures, "output": out.stdout[-2000:],
            "seconds": round(time.perf_counter() - began, 1), "loadavg_1m": loadavg(),
            **({"error": out.stderr[-2000:]} if out.returncode else {})}


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def _lat(entry: dict | None) -> str:
    if not entry or entry.get("p50_ms") is None:
        return "–"
    rounds = entry.get("rounds") or []  # --repeat-latency: the medians of the rounds
    figure = "median_" if rounds else ""
    text = "/".join(_fmt(entry.get(figure + k), 1) for k in ("p50_ms", "p99_ms", "p999_ms"))
    text += f" @{_fmt(entry.get(figure + 'achieved_rate'))}/s"
    if rounds:
        text += (f" (median of {len(rounds)}; p99 "
                 + ", ".join(_fmt(r.get("p99_ms"), 1) for r in rounds) + ")")
    return text + ("" if all(r.get("caught_up", True) for r in rounds or [entry])
                   else " (fell behind)")


def table(results: dict) -> str:
    fractions = tuple(results.get("options", {}).get("fractions") or (0.5, 0.8))
    heads = " | ".join(f"p50/p99/p999 ms @{f:.0%}" for f in fractions)
    lines = ["| engine | workload | events/s | per worker | CPU s (thr.) | peak RSS MiB "
             f"| {heads} | verified |",
             "|---|---|---|---|---|---|" + "---|" * len(fractions) + "---|"]
    for r in results["engines"]:
        if r["engine"] in ("engine-apply", "recovery"):
            continue
        thr = r.get("throughput") or {}
        lat = {e["fraction"]: e for e in r.get("latency") or []}
        ver = r.get("verification") or {}
        verified = "error: " + r["error"][:80] if r.get("error") else (
            ("exact" if ver.get("exact") else "MISMATCH") if ver else "–")
        workers = r.get("workers") or 1
        rate = headline_rate(r)
        runs = thr.get("rounds_events_per_s") or []
        spread = (f" (median of {len(runs)}: {_fmt(min(runs))}–{_fmt(max(runs))})"
                  if len(runs) > 1 else "")
        lines.append(
            f"| {r['engine']} | {r.get('pipeline')} ({_fmt(thr.get('events'))} ev) "
            f"| {_fmt(rate)}{spread}{'' if thr.get('completed', True) else ' (timed out)'} "
            f"| {_fmt(rate / workers if rate else None)} | {_fmt(thr.get('cpu_s'), 1)} "
            f"| {_fmt(thr.get('peak_rss_mib'))} | "
            + " | ".join(_lat(lat.get(f)) for f in fractions) + f" | {verified} |")
    for r in results["engines"]:
        if r["engine"] == "engine-apply":
            lines.append("")
            lines.append("engine `apply` on one core: " + ", ".join(
                f"{k}: {v:,.0f} events/CPU s" for k, v in r.get("events_per_cpu_s", {}).items()))
        if r["engine"] == "recovery":
            rec = r.get("recovery") or {}
            h = r.get("http") or {}
            ver = r.get("verification") or {}
            lines.append("")
            lines.append(
                f"recovery (embedded) of {_fmt(r.get('members'))} members: "
                f"{_fmt(rec.get('seconds_to_ready'), 1)} s to ready, CPU "
                f"{_fmt(rec.get('cpu_s'), 1)} s, peak RSS {_fmt(rec.get('peak_rss_mib'))} MiB"
                f"; sample {'exact' if ver.get('exact') else 'MISMATCH' if ver else '–'}"
                + (f"; error: {r['error'][:200]}" if r.get("error") else ""))
            if h:
                lines.append(
                    f"GET /v1/members/{{id}} at {_fmt(h.get('rate'))} req/s open loop for "
                    f"{_fmt(h.get('duration_s'))} s (achieved {_fmt(h.get('achieved_rate'))}/s): "
                    f"p50 {h.get('p50_ms')} ms, p99 {h.get('p99_ms')} ms, p999 "
                    f"{h.get('p999_ms')} ms, {h.get('errors')} errors (after 5 s of the same "
                    f"load right after ready: p99 {(r.get('http_first_5s') or {}).get('p99_ms')}"
                    f" ms)")
    checks = []
    rounds = [{r["engine"]: r for r in engines}
              for engines in [*results.get("earlier_rounds", []), results["engines"]]]
    by = rounds[-1]

    def rate(name: str):
        return headline_rate(by.get(name) or {})

    def per_round(ratio) -> list[float]:
        return [value for value in map(ratio, rounds) if value]

    def ratio_text(values: list[float]) -> str:
        if len(values) < 2:
            return f"{values[0]:.2f}x"
        return (f"{statistics.median(values):.2f}x (median of {len(values)} rounds: "
                + ", ".join(f"{v:.2f}" for v in values) + ")")

    for label, value, target in (
            ("embedded, loyalty, per worker", rate("tillstream-embedded"), ">= 20,000"),
            ("tansu, loyalty, per worker", rate("tillstream-kafka-1w"), ">= 15,000")):
        checks.append(f"{label}: {_fmt(value)} ev/s (target {target})")
    for name in ("tillstream-embedded", "tillstream-kafka-1w"):
        half = {e["fraction"]: e for e in (by.get(name) or {}).get("latency") or []}.get(0.5)
        if half and half.get("p99_ms") is not None:
            p99 = half.get("median_p99_ms") or half["p99_ms"]
            rate_text = _fmt(half.get("median_achieved_rate") or half.get("achieved_rate"))
            checks.append(f"{name}, p99 at 50% of peak: {p99:,.1f} ms at {rate_text}/s"
                          + (f" (median of {len(half['rounds'])} rounds)"
                             if half.get("rounds") else "") + " (target <= 20 ms)")
    two_by_one = per_round(lambda r: _ratio(r, "tillstream-kafka-2w", "tillstream-kafka-1w"))
    if two_by_one:
        checks.append(f"2 workers / 1 worker on tansu: {ratio_text(two_by_one)} "
                      "(target >= 1.6x)" + skew_ceiling_text(by.get("tillstream-kafka-2w")))
    for peer, target in (("quix", "2x"), ("faust-naive", "30x")):
        values = per_round(lambda r, p=peer: _ratio(r, MINIMAL, p))
        if values:
            checks.append(f"Tillstream minimal / {peer}: {ratio_text(values)} "
                          f"(target >= {target})")
    if checks:
        lines.append("")
        lines.extend(f"- {c}" for c in checks)
    return "\n".join(lines)


def skew_ceiling_text(result: dict | None) -> str:
    """What the key skew allows n workers: the busiest one handled ``share`` of the events, so
    even at one worker's speed each they finish in ``share`` of one worker's time."""
    counts = ((result or {}).get("throughput") or {}).get("events_by_worker") or []
    if len(counts) < 2 or not sum(counts):
        return ""
    share = max(counts) / sum(counts)
    return (f"; the busiest worker handled {share:.1%} of the events, so perfect scaling "
            f"would give {1 / share:.2f}x")


#: Tillstream's minimal pipeline, whichever mode ran faster, against the peers.
MINIMAL = ("tillstream-embedded-minimal", "tillstream-kafka-1w-minimal")


def _rate(result: dict | None) -> float | None:
    return ((result or {}).get("throughput") or {}).get("events_per_s")


def headline_rate(result: dict) -> float | None:
    """An engine's events/s: the median over the rounds with ``--repeat``, else its run's."""
    thr = result.get("throughput") or {}
    return thr.get("median_events_per_s") or thr.get("events_per_s")


def _ratio(round_results: dict, numerator, denominator: str) -> float | None:
    """One round's ratio of two engines' events/s (the best of a tuple of numerators)."""
    names = numerator if isinstance(numerator, tuple) else (numerator,)
    top = max(filter(None, (_rate(round_results.get(n)) for n in names)), default=None)
    bottom = _rate(round_results.get(denominator))
    return top / bottom if top and bottom else None


#: What a latency run keeps in an earlier round's summary, and what its median is taken of.
LATENCY_FIGURES = ("achieved_rate", "p50_ms", "p99_ms", "p999_ms")


def earlier_rates(earlier_rounds: list[list[dict]]) -> dict[str, list[float]]:
    """Engine -> its events/s in each earlier round (the runs that have one)."""
    rates: dict[str, list[float]] = {}
    for engines in earlier_rounds:
        for result in engines:
            if _rate(result):
                rates.setdefault(result["engine"], []).append(_rate(result))
    return rates


def merge_rounds(results: dict) -> None:
    """Give each engine of the last round its events/s of every round and their median, and
    (``--repeat-latency``) each latency run the figures of every round and their medians."""
    earlier = results.get("earlier_rounds", [])
    rates = earlier_rates(earlier)
    for result in results["engines"]:
        for entry in result.get("latency") or []:
            rounds = [e for engines in earlier for r in engines
                      if r["engine"] == result["engine"]
                      for e in r.get("latency") or [] if e["fraction"] == entry["fraction"]]
            if not rounds or entry.get("p50_ms") is None:
                continue
            rounds = [e for e in rounds if e.get("p50_ms") is not None] + [
                {k: entry.get(k) for k in ("fraction", "caught_up", *LATENCY_FIGURES)}]
            entry["rounds"] = rounds
            for key in LATENCY_FIGURES:
                entry[f"median_{key}"] = statistics.median(r[key] for r in rounds)
        thr = result.get("throughput")
        if not thr:
            continue
        runs = rates.get(result["engine"], []) + [thr["events_per_s"]]
        thr["rounds_events_per_s"] = runs
        thr["median_events_per_s"] = statistics.median(runs)


def _round_summary(result: dict) -> dict:
    """What an earlier round keeps of a run (the last round keeps everything)."""
    keep = ("engine", "mode", "workers", "pipeline", "error", "note")
    thr = result.get("throughput") or {}
    ver = result.get("verification") or {}
    return {**{k: result[k] for k in keep if k in result},
            "throughput": {k: thr.get(k) for k in ("events", "completed", "events_per_s",
                                                   "processing_s", "cpu_s", "peak_rss_mib",
                                                   "loadavg_1m")},
            "latency": [{k: e.get(k) for k in ("fraction", "caught_up", *LATENCY_FIGURES)}
                        for e in result.get("latency") or []],
            **({"verification": {"exact": ver.get("exact")}} if ver else {})}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _defaults(args)
    only = [o.strip() for o in args.only.split(",") if o.strip()]
    unknown = set(only) - set(ALL)
    if unknown:
        sys.exit(f"unknown engines: {sorted(unknown)} (choose from {', '.join(ALL)})")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"stream{'-quick' if args.quick else ''}-{args.date}"
    results: dict = {"date": args.date, "command": "python -m bench " + " ".join(
        sys.argv[1:] if argv is None else argv), "machine": machine(),
        "loadavg_1m_start": loadavg(), "options": {k: v for k, v in vars(args).items()},
        "engines": []}
    root = Path(tempfile.mkdtemp(prefix="tillstream-bench-"))
    began = time.perf_counter()
    out = RESULTS_DIR / f"{stem}.json"

    def save() -> None:
        results["seconds"] = round(time.perf_counter() - began, 1)
        results["loadavg_1m_end"] = loadavg()
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")

    try:
        if "engine-apply" in only:
            results["engines"].append(run_engine_apply(args))
        needs_stream = set(only) - {"engine-apply", "recovery"}
        stream = None
        if needs_stream:
            st.log(f"generating {args.events:,} events (seed {args.seed}) ...")
            stream = st.Stream(args.events, args.seed, args.partitions,
                               minimal_events=args.minimal_events)
            results["workload"] = stream.describe()
            st.log(f"workload: {results['workload']}")
        plan = [("tillstream-embedded", lambda o, r: st.run_tillstream(
                    stream, r, "embedded", 1, "loyalty", o)),
                ("tillstream-kafka", lambda o, r: st.run_tillstream(
                    stream, r, "kafka", 1, "loyalty", o)),
                ("tillstream-kafka-2w", lambda o, r: st.run_tillstream(
                    stream, r, "kafka", 2, "loyalty", _no_latency(o))),
                ("tillstream-minimal", lambda o, r: st.run_tillstream(
                    stream, r, "embedded", 1, "minimal", o)),
                ("tillstream-minimal", lambda o, r: st.run_tillstream(
                    stream, r, "kafka", 1, "minimal", o))]
        for peer in ("faust-naive", "quix", "raw"):
            events = min(args.faust_events, args.minimal_events) if peer == "faust-naive" \
                else args.minimal_events
            plan.append((peer, lambda o, r, p=peer, n=events: st.run_peer(
                stream, r, PEER_NAMES[p], n, o)))
        results["earlier_rounds"] = []
        for round_no in range(1, args.repeat + 1):
            last = round_no == args.repeat
            opts = argparse.Namespace(**vars(args),
                                      prior_peaks=earlier_rates(results["earlier_rounds"]))
            if not last and not args.repeat_latency:
                opts.latency_duration = 0
            round_root = root / f"round-{round_no}"
            engines = results["engines"] if last else []
            for name, run in plan:
                if name in only:
                    st.log(f"== {name}" + (f" (round {round_no} of {args.repeat})"
                                           if args.repeat > 1 else ""))
                    engines.append(run(opts, round_root))
                    save()
            if not last:
                results["earlier_rounds"].append([_round_summary(r) for r in engines])
                if not args.keep:
                    shutil.rmtree(round_root, ignore_errors=True)
        merge_rounds(results)
        if "recovery" in only:
            st.log(f"== recovery of {args.recovery_members:,} members")
            rec = st.run_recovery(root, args.recovery_members, args.partitions, args)
            rec["engine"] = "recovery"
            results["engines"].append(rec)
        save()
        path = plot(results, RESULTS_DIR / f"bench{'-quick' if args.quick else ''}-"
                                           f"{args.date}.png")
        markdown = table(results)
        (RESULTS_DIR / f"{stem}.md").write_text(markdown + "\n")
        print("\n" + markdown + "\n", flush=True)
        print(f"results: {out}" + (f"; plot: {path}" if path else ""), flush=True)
    finally:
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    failed = sorted({r["engine"] for engines in [*results.get("earlier_rounds", []),
                                                  results["engines"]] for r in engines
                     if r.get("error") or (r.get("verification")
                                           and not r["verification"]["exact"])})
    if failed:
        print(f"failed or not verified: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


def _no_latency(args):
    copy = argparse.Namespace(**vars(args))
    copy.latency_duration = 0
    return copy


if __name__ == "__main__":
    sys.exit(main())
