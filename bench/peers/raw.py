"""The Python limit: a raw aiokafka consumer + rocksdict loop doing the minimal work.

One ``getmany`` per round; the round's sums are written in one RocksDB ``WriteBatch`` (no
changelog: the database is the only state), crossings are produced and awaited, then offsets
are committed. At-least-once: a crash between the batch write and the commit would count the
round again (the brief allows it for this peer).
"""

from __future__ import annotations

import asyncio
import signal
import struct
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rocksdict import Options, Rdict, WriteBatch

from bench.peers.common import THRESHOLD, Stats, parser

PACK = struct.Struct("<d")


async def run(args) -> None:
    stats = Stats(args.status)
    db = Rdict(args.data_dir + "/sums.db", options=Options(raw_mode=True))
    consumer = AIOKafkaConsumer(f"{args.app}-events", bootstrap_servers=args.bootstrap,
                                group_id=args.app, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20,
                                fetch_max_bytes=16 << 20)
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=1, acks=1)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    out_topic = f"{args.app}-crossings"
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=10000)
            if not batches:
                continue
            batch = WriteBatch(raw_mode=True)
            sums: dict[bytes, float] = {}
            sends = []
            get = db.get
            for messages in batches.values():
                for message in messages:
                    key = message.key
                    amount = orjson.loads(message.value)["data"]["amount"]
                    before = sums.get(key)
                    if before is None:
                        raw = get(key)
                        before = 0.0 if raw is None else PACK.unpack(raw)[0]
                    after = before + amount
                    sums[key] = after
                    if before < THRESHOLD <= after:
                        member = key.decode()
                        sends.append(await producer.send(out_topic, orjson.dumps(
                            {"member": member, "total": after,
                             "event": orjson.loads(message.value)["id"]}), key=key))
                    stats.record(message.timestamp / 1000.0, time.time())
            for key, total in sums.items():
                batch.put(key, PACK.pack(total))
            db.write(batch)
            if sends:
                await asyncio.gather(*sends)
            await consumer.commit()
    finally:
        stats.close()
        await consumer.stop()
        await producer.stop()
        db.close()


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
