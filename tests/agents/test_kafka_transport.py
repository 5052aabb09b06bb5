"""The Kafka transport's own settings and records, without a broker: the fetch wait the
worker's group consumer is built with, and what a fetched record becomes."""

from __future__ import annotations

import asyncio

from aiokafka.structs import ConsumerRecord

from agents.app import create_app
from agents.embedded_transport import CHECKED_HEADER
from agents.kafka_transport import Consumer
from agents.settings import Settings


def _group_consumer_wait(settings: Settings) -> int:
    async def build() -> int:
        app = create_app(settings)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms  # what AIOKafkaConsumer.start() hands its fetcher
        finally:
            await consumer.stop()
    return asyncio.run(build())


def test_the_group_consumer_waits_as_long_as_the_setting_says(tmp_path):
    settings = Settings.from_env({"TILLSTREAM_BROKER": "kafka://127.0.0.1:9",
                                  "TILLSTREAM_DATA_DIR": str(tmp_path),
                                  "TILLSTREAM_PIPELINE": "minimal",
                                  "TILLSTREAM_FETCH_MAX_WAIT_MS": "10"})
    assert _group_consumer_wait(settings) == 10


def test_by_default_it_waits_as_kafka_does_not_as_faust_does(tmp_path):
    settings = Settings(broker="kafka://127.0.0.1:9", data_dir=tmp_path, pipeline="minimal")
    assert _group_consumer_wait(settings) == 500


def test_a_kafka_record_is_never_taken_as_checked_whatever_its_headers_say():
    forged = ConsumerRecord("tillstream-events", 0, 7, 1_700_000_000_000, 0, b"m1", b"{}",
                            None, 2, 2, [(CHECKED_HEADER, b"")])
    record = Consumer._to_batch_record(forged)
    assert (record.offset, record.value, record.checked) == (7, b"{}", False)
