"""The PNG of a stream benchmark run: throughput per engine and latency percentiles per engine
at 50 % and 80 % of its peak (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path


def plot(results: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    engines = [r for r in results["engines"] if r.get("throughput")]
    if not engines:
        return None
    names = [r["engine"] for r in engines]
    # the median over the rounds with --repeat (bench/__main__.py), else the run's figure
    rates = [r["throughput"].get("median_events_per_s") or r["throughput"]["events_per_s"] or 0
             for r in engines]
    rounds = max(len(r["throughput"].get("rounds_events_per_s") or [1]) for r in engines)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6))
    bars = ax1.barh(names, rates, color=["#1f77b4" if n.startswith("tillstream") else "#999999"
                                         for n in names])
    ax1.set_xscale("log")
    ax1.set_xlabel("events/s (preloaded topic, log scale"
                   + (f"; median of {rounds} rounds)" if rounds > 1 else ")"))
    ax1.set_title("Throughput")
    for bar, rate in zip(bars, rates):
        ax1.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {rate:,.0f}",
                 va="center", fontsize=8)
    ax1.invert_yaxis()
    rows = []
    for r in engines:
        for entry in r.get("latency") or []:
            if entry.get("p50_ms") is not None:
                rows.append((f"{r['engine']} @{entry['fraction']:.0%}", entry))
    if rows:
        labels = [label for label, _ in rows]
        y = range(len(rows))
        height = 0.27
        for offset, (key, color) in enumerate((("p50_ms", "#2ca02c"), ("p99_ms", "#ff7f0e"),
                                               ("p999_ms", "#d62728"))):
            values = [entry.get(f"median_{key}") or entry.get(key) or 0 for _, entry in rows]
            ax2.barh([i + (offset - 1) * height for i in y], values, height=height,
                     color=color, label=key.replace("_ms", ""))
        ax2.set_yticks(list(y))
        ax2.set_yticklabels(labels, fontsize=8)
        ax2.set_xscale("log")
        ax2.set_xlabel("event-to-effect latency, ms (open loop, log scale)")
        ax2.set_title("Latency at 50 % / 80 % of each engine's peak")
        ax2.axvline(20, color="k", linestyle=":", linewidth=1)
        ax2.legend(loc="lower right")
        ax2.invert_yaxis()
    fig.suptitle(f"Tillstream stream benchmark {results.get('date')} — "
                 f"{results['machine'].get('cpus')} cores, shared machine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
