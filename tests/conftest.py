"""Shared fixtures. Servers (workers, the tansu broker) are started here and stopped here."""

from __future__ import annotations

import uuid

import pytest

from tests.support import TANSU_FAUST_OPTIONS, TansuBroker, WorkerProcess


@pytest.fixture(scope="session")
def tansu():
    """A tansu broker for the whole session; each test uses its own app id (own topics).

    Two quirks of tansu 0.6.0, checked by tests/agents/test_tansu_quirks.py:
    - ListOffsets(latest) answers the last batch's base offset + 1 when a produce request
      carries several records in one batch. Workers take high-water marks from fetch
      responses instead (agents/kafka_transport.py), so producers batch as on Kafka.
    - topics created without configs come back with empty configs; Tillstream declares every
      topic with explicit ``cleanup.policy`` / ``retention.ms`` (agents/topics.py).
    """
    broker = TansuBroker().start()
    yield broker
    broker.stop()


@pytest.fixture(params=["embedded", "kafka"])
def mode(request):
    return request.param


@pytest.fixture
def worker_factory(tmp_path, request):
    """Builds worker processes for the test's mode; stops them all at the end."""
    workers: list[WorkerProcess] = []
    app_id = f"ts-{uuid.uuid4().hex[:8]}"

    def make(mode: str = "embedded", name: str = "w1", partitions: int = 4,
             env: dict[str, str] | None = None) -> WorkerProcess:
        if mode == "kafka":
            broker = request.getfixturevalue("tansu")
            worker = WorkerProcess(tmp_path / name, broker=broker.url, app_id=app_id,
                                   partitions=partitions, faust_options=TANSU_FAUST_OPTIONS,
                                   extra_env=env)
        else:
            worker = WorkerProcess(tmp_path / name, app_id=app_id, partitions=partitions,
                                   extra_env=env)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop()
