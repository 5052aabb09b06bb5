"""What the peers share: the command line, the status file, the latency histogram."""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

from bench.measure import BUCKETS, bucket_of

THRESHOLD = 1000.0


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--app", required=True, help="app id: topics <app>-events, <app>-crossings")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--status", required=True, help="status JSON written ~3 times a second")
    p.add_argument("--partitions", type=int, default=4)
    return p


class Stats:
    """Counters updated by the processing loop; a daemon thread writes them to the status file
    (list/attribute reads are atomic under the GIL, a torn read only shifts a record)."""

    def __init__(self, path: str, interval: float = 0.3) -> None:
        self.path = path
        self.count = 0
        self.t_first = None
        self.t_last = None
        self.hist = [0] * BUCKETS
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def record(self, timestamp_s: float, now: float) -> None:
        """One processed record, given its timestamp (s since the epoch) and now."""
        self.count += 1
        if self.t_first is None:
            self.t_first = now
        self.t_last = now
        self.hist[bucket_of(now - timestamp_s)] += 1

    def write(self) -> None:
        doc = {"count": self.count, "t_first": self.t_first, "t_last": self.t_last,
               "hist": list(self.hist), "written": time.time(), "pid": os.getpid()}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.write()
