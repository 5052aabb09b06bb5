"""The program configuration, replicated to every worker.

Admin writes go to a one-partition compacted topic ``<app>-config`` (key ``<kind>/<id>``,
value the JSON object, or a tombstone to delete). Every worker reads that whole topic with its
own reader — outside the consumer group, so each worker sees every change — and keeps the
objects in memory; the compiled program is rebuilt only when something changed. A worker is
ready only once it has read the topic up to the high-water mark seen at start.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import faust
import orjson

from agents.kafka_transport import fetch_max_wait_ms, fetched_high_waters

logger = logging.getLogger(__name__)

CONFIG_TOPIC_CONFIGS = {"cleanup.policy": "compact", "retention.ms": -1}


class ConfigReplica:
    def __init__(self, app: faust.App, compile_program: Callable[[dict], Any]) -> None:
        self.app = app
        self.topic = app.topic(f"{app.conf.id}-config", partitions=1, key_serializer="raw",
                               value_serializer="raw", compacting=True, deleting=False,
                               retention=None, config=dict(CONFIG_TOPIC_CONFIGS))
        self.objects: dict[str, dict[str, dict]] = {}
        self.version = 0
        self.read_offset = 0
        self.caught_up = asyncio.Event()
        self._changed = asyncio.Condition()
        self._compile = compile_program
        self._compiled_version = -1
        self._program: Any = None

    # -- reading ------------------------------------------------------------------------------

    def apply_record(self, key: bytes, value: bytes | None, offset: int) -> None:
        kind, _, object_id = key.decode().partition("/")
        objects = self.objects.setdefault(kind, {})
        if value is None:
            objects.pop(object_id, None)
        else:
            objects[object_id] = orjson.loads(value)
        self.read_offset = offset + 1
        self.version += 1

    def snapshot(self) -> dict[str, dict[str, dict]]:
        return {kind: dict(objects) for kind, objects in self.objects.items()}

    def get(self, kind: str, object_id: str) -> dict | None:
        return self.objects.get(kind, {}).get(object_id)

    def program(self) -> Any:
        """The compiled program for the current configuration (recompiled after a change)."""
        if self._compiled_version != self.version:
            self._program = self._compile(self.snapshot())
            self._compiled_version = self.version
        return self._program

    async def run(self) -> None:
        """Follow the config topic forever (a worker service task)."""
        await self.topic.maybe_declare()
        reader = _reader_for(self.app, self.topic.get_topic_name())
        await reader.start()
        try:
            start_highwater = await reader.highwater()
            if start_highwater <= self.read_offset:
                self.caught_up.set()
            while True:
                records = await reader.read(self.read_offset, timeout=1.0)
                for offset, key, value in records:
                    self.apply_record(key, value, offset)
                if records:
                    async with self._changed:
                        self._changed.notify_all()
                if not self.caught_up.is_set() and self.read_offset >= start_highwater:
                    self.caught_up.set()
        finally:
            await reader.stop()

    # -- writing ------------------------------------------------------------------------------

    async def write(self, kind: str, object_id: str, value: dict | None,
                    timeout: float = 10.0) -> None:
        """Write (or delete) one object and wait until this worker's replica has it."""
        metadata = await (await self.topic.send(
            key=f"{kind}/{object_id}".encode(),
            value=None if value is None else orjson.dumps(value)))
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self.read_offset > metadata.offset), timeout)


class _EmbeddedReader:
    def __init__(self, app: faust.App, topic: str) -> None:
        self.log = app.transport.log
        self.topic = topic

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def highwater(self) -> int:
        return self.log.end_offset(self.topic, 0)

    async def read(self, offset: int, timeout: float) -> list[tuple[int, bytes, bytes | None]]:
        records = self.log.read(self.topic, 0, offset, 1000)
        if not records:
            await asyncio.sleep(min(timeout, 0.05))
        return [(r.offset, r.key, r.value) for r in records]


class _KafkaReader:
    def __init__(self, app: faust.App, topic: str) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        servers = [f"{url.host}:{url.port or 9092}" for url in app.conf.broker]
        self.tp = TopicPartition(topic, 0)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                                         auto_offset_reset="earliest",
                                         fetch_max_wait_ms=fetch_max_wait_ms(app))

    async def start(self) -> None:
        await self.consumer.start()
        self.consumer.assign([self.tp])
        self._position: int | None = None

    async def stop(self) -> None:
        await self.consumer.stop()

    async def highwater(self) -> int:
        mark = (await fetched_high_waters(self.consumer, [self.tp]))[self.tp]
        self._position = None
        return mark

    async def read(self, offset: int, timeout: float) -> list[tuple[int, bytes, bytes | None]]:
        if self._position != offset:
            self.consumer.seek(self.tp, offset)
        batch = await self.consumer.getmany(self.tp, timeout_ms=int(timeout * 1000))
        records = [(r.offset, r.key, r.value) for r in batch.get(self.tp, [])]
        self._position = records[-1][0] + 1 if records else offset
        return records


def _reader_for(app: faust.App, topic: str):
    if str(app.conf.broker[0]).startswith("embedded"):
        return _EmbeddedReader(app, topic)
    return _KafkaReader(app, topic)
