"""The workload of the stream benchmarks (issue 6): seeded, reproducible.

**Loyalty workload** — the retail mix of :mod:`bench.engine_apply` (``Generator``, ``PROGRAM``:
≈70 % purchases with line items, 12 % visits, 10 % web activity, 3 % joins of which a third
with a referrer, 3 % returns, 2 % manual points; members drawn from a Zipf distribution over
1,000,000 ids; 4 tiers, 8 segments, 20 scenarios on a spread of triggers). The engine refuses
events of unknown members, so a workload comes in two parts:

- ``joins``: one ``member.joined`` per distinct *existing* member the measured events touch
  (their members and their referrers), dated a day before the first measured event — the
  warm-up, processed before the measured part and not timed with it;
- ``events``: the measured mix.

:meth:`LoyaltyWorkload.extend` continues the same seeded stream (for the open-loop latency runs),
returning the joins of the members not seen before and the next events.

**Minimal workload** — derived from the same stream: for every measured event a record
``{"id", "type": "purchase", "member", "data": {"amount": <the purchase amount, 1 otherwise>}}``.
Semantics: per-member sum of ``amount`` (Python floats, added in partition order); when a
member's sum first reaches 1000 the engine emits ONE record to ``<app>-crossings``
(key = member, value ``{"member", "total", "event"}``). :func:`minimal_expected` gives the
sums and the crossings any correct engine must produce.

Records are ``(partition, key, value)``: key = member id (utf-8), value = the document as JSON
(orjson), partition = Kafka's murmur2 partitioner, as producers and the embedded log use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import orjson

from agents.embedded_transport import partition_for
from bench.engine_apply import PROGRAM, START, Generator
from engine.events import iso

POPULATION = 1_000_000
THRESHOLD = 1000.0

Record = tuple[int, bytes, bytes]


def program_collections() -> tuple[dict, dict]:
    """``PROGRAM`` as the admin API takes it: (program settings, collections by API kind)."""
    program = copy.deepcopy(PROGRAM)
    collections = {"tiers": program["tiers"], "segments": program["segments"],
                   "triggers": program["triggers"], "rewards": program["rewards"],
                   "promo_pools": program["pools"], "scenarios": program["scenarios"]}
    return program["program"]["default"], collections


def _document(doc: dict) -> dict:
    if not isinstance(doc["time"], str):
        doc["time"] = iso(doc["time"])
    return doc


def to_records(documents: list[dict], partitions: int) -> list[Record]:
    out = []
    for doc in documents:
        key = doc["member"].encode()
        out.append((partition_for(key, partitions), key, orjson.dumps(doc)))
    return out


@dataclass
class LoyaltyWorkload:
    seed: int
    partitions: int = 4
    population: int = POPULATION
    generator: Generator = field(init=False, repr=False)
    joined: set = field(default_factory=set, repr=False)
    _join_seq: int = 0

    def __post_init__(self) -> None:
        self.generator = Generator(self.population, self.seed)

    def extend(self, events: int) -> tuple[list[dict], list[dict]]:
        """(joins of members not joined yet, the next ``events`` event documents)."""
        gen = self.generator
        docs = [gen.next() for _ in range(events)]
        needed: list[str] = []
        for doc in docs:
            for member in (doc["member"], doc["data"].get("referrer")):
                if member is None or member in self.joined:
                    continue
                if doc["type"] == "member.joined" and member == doc["member"]:
                    self.joined.add(member)  # joins inside the mix (new ids past the population)
                    continue
                self.joined.add(member)
                needed.append(member)
        joins = []
        for member in needed:
            self._join_seq += 1
            # Dated before the mix; a separate id space so the generator's ids stay untouched.
            joins.append({"id": f"w{self._join_seq}", "type": "member.joined", "member": member,
                          "time": iso(START - 86400 + self._join_seq * 0.001), "brand": "default",
                          "data": {"profile": {"name": f"N{self._join_seq % 1000}",
                                               "city": "Warsaw" if self._join_seq % 5 == 0
                                               else "Kraków"},
                                   "channel": "pos"}})
        return joins, [_document(d) for d in docs]


def mix_of(documents: list[dict]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for doc in documents:
        counts[doc["type"]] = counts.get(doc["type"], 0) + 1
    return {k: round(v / max(1, len(documents)), 4) for k, v in sorted(counts.items())}


# -- minimal workload --------------------------------------------------------------------------

def minimal_documents(documents: list[dict]) -> list[dict]:
    out = []
    for doc in documents:
        amount = doc["data"].get("amount") if doc["type"] == "purchase" else None
        out.append({"id": doc["id"], "type": "purchase", "member": doc["member"],
                    "data": {"amount": amount if amount is not None else 1}})
    return out


def minimal_expected(documents: list[dict]) -> tuple[dict[str, float], dict[str, dict]]:
    """(per-member sums, member -> the crossing record {"member", "total", "event"})."""
    sums: dict[str, float] = {}
    crossings: dict[str, dict] = {}
    for doc in documents:
        member = doc["member"]
        before = sums.get(member, 0.0)
        after = before + doc["data"]["amount"]
        sums[member] = after
        if before < THRESHOLD <= after:
            crossings[member] = {"member": member, "total": after, "event": doc["id"]}
    return sums, crossings
