"""``kafka://``: faust's aiokafka transport with the batch path (agents/batching.py).

Only the consumer's drain loop changes (and what a batch handler is given for a record);
connection handling, the consumer thread, group membership, the rebalance listener and the
producer are faust's own.
"""

from __future__ import annotations

from typing import ClassVar, Type

from faust.transport.drivers import aiokafka as faust_aiokafka

from agents.batching import BatchDrainMixin, BatchRecord

SCHEME = "kafka"


class Consumer(BatchDrainMixin, faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetched records go to batch handlers where registered."""

    @staticmethod
    def _to_batch_record(record) -> BatchRecord:
        timestamp = record.timestamp  # aiokafka: milliseconds, as in faust's _to_message
        return BatchRecord(record.topic, record.partition, record.offset,
                           None if timestamp is None else timestamp / 1000.0,
                           record.key, record.value)


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Type[Consumer]] = Consumer


def register() -> None:
    """Make ``kafka://`` URLs resolve to this transport (idempotent)."""
    from faust.transport.drivers import TRANSPORTS

    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
