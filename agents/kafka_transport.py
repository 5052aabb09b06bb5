"""``kafka://``: faust's aiokafka transport with the batch path (agents/batching.py).

Only the consumer's drain loop changes; connection handling, the consumer thread, group
membership, the rebalance listener and the producer are faust's own.
"""

from __future__ import annotations

from typing import ClassVar, Type

from faust.transport.drivers import aiokafka as faust_aiokafka

from agents.batching import BatchDrainMixin

SCHEME = "kafka"


class Consumer(BatchDrainMixin, faust_aiokafka.Consumer):
    """faust's aiokafka consumer whose fetched records go to batch handlers where registered."""


class Transport(faust_aiokafka.Transport):
    Consumer: ClassVar[Type[Consumer]] = Consumer


def register() -> None:
    """Make ``kafka://`` URLs resolve to this transport (idempotent)."""
    from faust.transport.drivers import TRANSPORTS

    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
