"""The harness's rounds (``python -m bench --repeat N``) and its longer minimal stream: how a
figure and a target's ratio are read off several runs of a shared, noisy machine."""

from bench.__main__ import merge_rounds, table
from bench.stream import repeated_minimal


def run(engine: str, rate: float, workers: int = 1) -> dict:
    return {"engine": engine, "workers": workers, "pipeline": "minimal",
            "throughput": {"events": 1000, "events_per_s": rate}}


def test_minimal_stream_repeats_the_events_under_new_ids():
    documents = [{"id": "e1", "type": "purchase", "member": "m1", "data": {"amount": 5}},
                 {"id": "e2", "type": "purchase", "member": "m2", "data": {"amount": 7}}]

    events = repeated_minimal(documents, 5)

    assert [d["id"] for d in events] == ["e1", "e2", "e1~2", "e2~2", "e1~3"]
    assert [d["member"] for d in events] == ["m1", "m2", "m1", "m2", "m1"]
    assert documents[0]["id"] == "e1"  # the loyalty stream's documents are not changed
    assert repeated_minimal(documents, 1) == documents[:1]


def test_an_engine_reports_the_median_of_its_rounds():
    results = {"earlier_rounds": [[run("quix", 40_000)], [run("quix", 52_000)]],
               "engines": [run("quix", 45_000)]}

    merge_rounds(results)

    throughput = results["engines"][0]["throughput"]
    assert throughput["rounds_events_per_s"] == [40_000, 52_000, 45_000]
    assert throughput["median_events_per_s"] == 45_000
    assert throughput["events_per_s"] == 45_000  # the last round's own figure stays
    assert "| quix | minimal (1,000 ev) | 45,000 (median of 3: 40,000–52,000) |" in table(results)


def test_a_target_ratio_is_the_median_of_each_rounds_ratio():
    """Ratios pair the runs of one round (minutes apart, the same load), not two medians."""
    rounds = [[run("tillstream-kafka-1w", 5_000), run("tillstream-kafka-2w", 9_000, 2),
               run("tillstream-embedded-minimal", 88_000), run("quix", 40_000)],
              [run("tillstream-kafka-1w", 4_000), run("tillstream-kafka-2w", 6_000, 2),
               run("tillstream-embedded-minimal", 70_000), run("quix", 50_000)]]
    results = {"earlier_rounds": rounds[:1], "engines": rounds[1]}
    merge_rounds(results)

    text = table(results)

    assert "2 workers / 1 worker on tansu: 1.65x (median of 2 rounds: 1.80, 1.50)" in text
    assert "Tillstream minimal / quix: 1.80x (median of 2 rounds: 2.20, 1.40)" in text


def test_one_round_reads_as_before():
    results = {"engines": [run("tillstream-kafka-1w", 5_000),
                           run("tillstream-kafka-2w", 8_000, 2)]}
    merge_rounds(results)

    text = table(results)

    assert "| tillstream-kafka-1w | minimal (1,000 ev) | 5,000 | 5,000 |" in text
    assert "2 workers / 1 worker on tansu: 1.60x (target >= 1.6x)" in text


def test_the_two_worker_ratio_says_what_the_key_skew_allows():
    """The busier worker of two handled 57 % of the events (the hottest member's partition):
    even at one worker's speed each, two finish in 57 % of one worker's time."""
    two = run("tillstream-kafka-2w", 7_500, 2)
    two["throughput"]["events_by_worker"] = [43_000.0, 57_000.0]
    results = {"engines": [run("tillstream-kafka-1w", 5_000), two]}
    merge_rounds(results)

    text = table(results)

    assert ("2 workers / 1 worker on tansu: 1.50x (target >= 1.6x); the busiest worker "
            "handled 57.0% of the events, so perfect scaling would give 1.75x") in text


def latency(fraction: float, rate: float, p99: float) -> dict:
    return {"fraction": fraction, "achieved_rate": rate, "caught_up": True,
            "p50_ms": p99 / 4, "p99_ms": p99, "p999_ms": p99 * 2}


def test_with_repeat_latency_a_latency_run_reports_the_median_of_its_rounds():
    def embedded(rate: float, p99: float) -> dict:
        return {**run("tillstream-embedded", rate), "pipeline": "loyalty",
                "latency": [latency(0.5, rate / 2, p99)]}

    results = {"earlier_rounds": [[embedded(6_000, 40.0)], [embedded(6_400, 18.0)]],
               "engines": [embedded(6_200, 25.0)]}

    merge_rounds(results)

    entry = results["engines"][0]["latency"][0]
    assert [r["p99_ms"] for r in entry["rounds"]] == [40.0, 18.0, 25.0]
    assert entry["median_p99_ms"] == 25.0 and entry["median_achieved_rate"] == 3_100
    text = table(results)
    assert "6.2/25.0/50.0 @3,100/s (median of 3; p99 40.0, 18.0, 25.0)" in text
    assert ("tillstream-embedded, p99 at 50% of peak: 25.0 ms at 3,100/s "
            "(median of 3 rounds) (target <= 20 ms)") in text
