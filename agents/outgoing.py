"""Records produced while a batch is handled, awaited once before the batch's state is flushed.

The embedded log takes them as they are made (one atomic write per loop turn). The Kafka
producer gets them at the wait, as record batches (``send_records``,
agents/kafka_transport.py): a record sent alone costs aiokafka a coroutine, a future and a
partitioner call, and nothing was sent before the wait anyway (the handler does not yield to
the producer's sender while it works)."""

from __future__ import annotations

import asyncio


class Outgoing:
    def __init__(self, producer) -> None:
        self._send = producer.send
        self._append_this_turn = getattr(producer, "append_this_turn", None)  # embedded
        self._send_records = getattr(producer, "send_records", None)  # Kafka
        self._records: list = []
        self.futures: list = []

    async def send(self, topic: str, key: bytes | None, value: bytes,
                   checked: bool = False) -> None:
        """``checked``: the HTTP API has validated the record; the embedded log marks it so
        (``BatchRecord.checked``), a Kafka topic does not."""
        if self._append_this_turn is not None:
            turn = self._append_this_turn(topic, key, value, None, checked)
            if not self.futures or self.futures[-1] is not turn:
                self.futures.append(turn)
        elif self._send_records is not None:
            self._records.append((topic, key, value, None))
        else:
            self.futures.append(await self._send(topic, key, value, None, None, None))

    async def wait(self) -> None:
        """Until every record sent so far is durable; raises the first failed send's error."""
        if self._records:
            records, self._records = self._records, []
            self.futures.extend(sent.future for sent in await self._send_records(records))
        futures, self.futures = self.futures, []
        await wait_all(futures)


async def wait_all(futures: list) -> None:
    """Await many send futures. The embedded log resolves them all in the next turn of the
    loop, so one ``sleep(0)`` usually finds them done, without a callback per future."""
    if not futures:
        return
    if not futures[-1].done():
        await asyncio.sleep(0)
    pending = [future for future in futures if not future.done()]
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for future in futures:
        future.result()
