"""The embedded log's compaction scans, run in a process of their own.

A compaction reads whole changelog partitions to find the records a newer one of the same key
supersedes. In the worker that scan was 7.8 % of the event loop in an open-loop run at 1,950
events/s after 60,000 warm events, and the member agent's batches took about twice as long
while a pass ran. The scan needs nothing of the worker but the log's files: this module, run
as ``python -m tables.compaction_scan``, opens the log as a RocksDB secondary instance
(:func:`tables.embedded_log.find_stale`) and writes the stale offsets to its standard output;
the worker then deletes them a few hundred at a time (``EmbeddedLog.delete_stale_steps``).

Wire format, all integers big-endian: per partition ``partition (u32), record keys (u64),
stale offsets (u64), offsets (8 bytes each)``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import sys
from pathlib import Path
from typing import Optional

import orjson

from tables.embedded_log import find_stale

logger = logging.getLogger(__name__)

_HEAD = struct.Struct(">IQQ")
_ROOT = str(Path(__file__).resolve().parents[1])


def encode(found: dict[int, tuple[bytes, int]]) -> bytes:
    return b"".join(_HEAD.pack(partition, keys, len(offsets) // 8) + offsets
                    for partition, (offsets, keys) in found.items())


def decode(raw: bytes) -> dict[int, tuple[bytes, int]]:
    found: dict[int, tuple[bytes, int]] = {}
    position = 0
    while position < len(raw):
        partition, keys, count = _HEAD.unpack_from(raw, position)
        position += _HEAD.size
        found[partition] = (raw[position:position + 8 * count], keys)
        position += 8 * count
    if position != len(raw):
        raise ValueError("truncated compaction scan output")
    return found


async def scan_elsewhere(path: Path, topic: str,
                         ends: dict[int, int]) -> Optional[dict[int, tuple[bytes, int]]]:
    """The stale records of ``topic`` below ``ends``, found by a process of its own; None if
    that process failed (the caller then compacts in-process), with the reason logged."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_ROOT, environ.get("PYTHONPATH")]))
    request = orjson.dumps({"path": str(path), "topic": topic,
                            "ends": {str(p): end for p, end in ends.items()}})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tables.compaction_scan", request.decode(),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=environ)
    try:
        out, err = await process.communicate()
    except BaseException:  # cancelled: the worker stops
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        logger.warning("compaction scan of %s failed (exit %s): %s", topic, process.returncode,
                       err.decode(errors="replace").strip()[-2000:])
        return None
    try:
        return decode(out)
    except (ValueError, struct.error) as exc:
        logger.warning("compaction scan of %s answered badly: %s", topic, exc)
        return None


def main(argv: list[str]) -> int:
    request = orjson.loads(argv[1])
    found = find_stale(request["path"], request["topic"],
                       {int(p): end for p, end in request["ends"].items()})
    sys.stdout.buffer.write(encode(found))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
