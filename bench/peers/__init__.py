"""Peers of the stream benchmarks (issue 6), each a script run as its own process on the same
broker and the same minimal workload (per-member sum of ``amount``; one record to
``<app>-crossings`` when a member's sum first reaches 1000).

Every peer writes a status file (``--status``) about three times a second: records processed,
first/last processing times and a log-bucket histogram of ``now - record timestamp`` (the
producer's create time), which the harness diffs around each latency run.
"""
