"""Table recovery a fetched batch at a time: what faust's ``Recovery._slurp_changelogs`` does
per changelog record, done once per batch.

faust restores a table by passing every changelog record through the conductor, an Event, the
recovery queue and a loop that, after each record, recomputes the remaining offsets of every
changelog partition (and formats a debug line). That ran at about 5,000 records/s here (one
core flat out; bench/RESULTS.md), so a worker with a million members took minutes to start.

The consumer gives a fetched batch of a changelog partition under recovery (an active one
being restored, or a standby one being followed) to :func:`restore_batch`, which keeps faust's
bookkeeping exactly: it skips offsets already seen, applies the records with the table's own
``apply_changelog_batch`` (one RocksDB ``WriteBatch`` per partition, the persisted offset
with it), advances the recovery's offset for the partition and signals the end of recovery,
or the standbys being ready, as faust's loop would. A table with an ``on_changelog_event``
callback keeps faust's per-record path, which calls it.
"""

from __future__ import annotations

from time import monotonic
from typing import NamedTuple

from faust.types import TP
from faust.types.tuples import Message
from faust.utils.tracing import finish_span


class ChangelogEvent(NamedTuple):
    """What ``apply_changelog_batch`` reads of a faust Event: its message."""

    message: Message


def restore_batch(recovery, tp: TP, messages: list[Message]) -> bool:
    """Apply ``messages`` of changelog partition ``tp`` to its table; False if ``tp`` is not a
    changelog partition the recovery follows (the caller then delivers them as faust does)."""
    table = recovery.tp_to_table.get(tp)
    if table is None or table._on_changelog_event is not None:
        return False
    if tp in recovery.active_tps:
        offsets, received_at = recovery.active_offsets, recovery._active_events_received_at
    elif tp in recovery.standby_tps:
        offsets, received_at = recovery.standby_offsets, recovery._standby_events_received_at
    else:
        return False
    seen = offsets.get(tp)
    events = [ChangelogEvent(m) for m in messages if seen is None or m.offset > seen]
    if events:
        buffered = recovery.buffers.get(table)
        if buffered:
            table.apply_changelog_batch(buffered)
            buffered.clear()
        table.apply_changelog_batch(events)
        offsets[tp] = events[-1].message.offset
        received_at[tp] = monotonic()
    _signal_progress(recovery)
    return True


def _signal_progress(recovery) -> None:
    """faust's ``_maybe_signal_recovery_end`` and standby check, after a batch."""
    if recovery.in_recovery and not recovery.need_recovery():
        recovery.flush_buffers()
        recovery._set_recovery_ended()
        recovery.signal_recovery_end.set()
    tables = recovery.tables
    ready = recovery._standbys_span is None and tables.standbys_ready
    if not ready and not recovery.standby_remaining_total():
        if recovery._standbys_span is not None:
            finish_span(recovery._standbys_span)
            recovery._standbys_span = None
        tables.on_standbys_ready()
