"""Points: earning (standard and occasional), spending, pending points, expiry lots, returns.

Policies (documented in README "Loyalty rules"):
- Conversion: ``amount × rate`` with the member's tier rate when the tier sets one, else the
  program's; rounded by the program's rule (floor by default).
- Every positive entry goes into the expiry lot of its day when ``expiry_days`` is set: points
  earned on (UTC) day D expire at the end of day D + ``expiry_days`` (the start of the next
  day), so they live at least ``expiry_days`` full days. Every negative entry consumes lots
  oldest first, so the points that expire are always the oldest left.
- With ``pending_days``, points earned by a purchase (and its multiplier bonus) wait in the
  returns window and are written to the ledger when it ends; a return inside the window cancels
  them before they reach the balance.
- A return reverses the transaction's points (bonus included) in proportion to the returned
  amount, computed cumulatively so partial returns never drift by rounding. Points already
  spent are not clawed back below zero: the reversal takes what the balance holds and writes
  off the rest (the balance never goes negative).
"""

from __future__ import annotations

from engine.context import Context, round_points
from engine.state import (DAY, HISTORY_DAYS, MAX_TRANSACTIONS, PENDING, POINTS_EARNED_TOTAL,
                          PURCHASES_TOTAL, SPEND_TOTAL, bucket_add, day_number, pair_add,
                          transaction_fields, transaction_record, transaction_time)


def purchase_rate(ctx: Context) -> float:
    tier_id = ctx.state.tier
    if tier_id is not None:
        rate = ctx.program.tier_rates.get(tier_id)
        if rate is not None:
            return rate
    return ctx.settings.points_per_unit


def _lots(ctx: Context) -> list:
    """The member's lots, to change in place (copied first while still the input's)."""
    lots = ctx.state.lots
    if lots is ctx.base.lots:
        lots = ctx.state.lots = lots.copy()
    return lots


def _transactions(ctx: Context) -> dict:
    """The member's transactions, to change in place (copied first while still the input's)."""
    transactions = ctx.state.transactions
    if transactions is ctx.base.transactions:
        transactions = ctx.state.transactions = transactions.copy()
    return transactions


def credit(ctx: Context, kind: str, points: int, scenario: str | None = None,
           source: str | None = None) -> None:
    """A positive entry that opens (or joins) the expiry lot of its day."""
    entry = ctx.post(kind, points, scenario, source)
    if entry is None:
        return
    expiry_days = ctx.settings.expiry_days
    if expiry_days:
        add_lot(ctx, (ctx.day + expiry_days + 1) * DAY, points)


def add_lot(ctx: Context, expires_at: float, points: int) -> None:
    """Lots are kept flat (``expires_at, remaining, ...``), oldest first, one per expiry day
    (:func:`engine.state.pair_add`); a new lot moves the expiry timer unless it comes last
    after others."""
    lots = _lots(ctx)
    before = len(lots)
    index = pair_add(lots, expires_at, points)
    if len(lots) > before and (before == 0 or index < before):
        ctx.timers_dirty = True


def debit(ctx: Context, kind: str, points: int, scenario: str | None = None) -> int:
    """A negative entry of at most the balance; consumes the oldest lots. Returns the points
    actually taken."""
    points = min(points, ctx.state.balance)
    if points <= 0:
        return 0
    ctx.post(kind, -points, scenario)
    consume_lots(ctx, points)
    return points


def consume_lots(ctx: Context, points: int) -> None:
    """Take points from the oldest lots (the expiry timer moves only when one is used up)."""
    if not ctx.state.lots:
        return
    lots = _lots(ctx)
    while points > 0 and lots:
        remaining = lots[1]
        if remaining > points:
            lots[1] = remaining - points
            return
        points -= remaining
        del lots[:2]
        ctx.timers_dirty = True


def standard_earn(ctx: Context, kind: str, points: int, tx: str | None) -> bool:
    """Earn standard points, or hold them pending when they are a purchase's (``tx``, whose
    record counts them already) under ``pending_days``; True when they reached the balance."""
    if points <= 0:
        return False
    if tx is not None and ctx.settings.pending_days:
        hold(ctx, points, kind, tx)
        return False
    credit(ctx, kind, points)
    ctx.earned(points)
    return True


def hold(ctx: Context, points: int, kind: str, tx: str) -> None:
    """Points of a purchase held until its returns window ends."""
    pending = ctx.state.pending
    if pending is ctx.base.pending:
        pending = ctx.state.pending = pending.copy()
    unlock_at = ctx.at + ctx.settings.pending_days * DAY
    if not pending or unlock_at < min(entry[0] for entry in pending):
        ctx.timers_dirty = True
    pending.append([unlock_at, points, kind, tx, ctx.event.id])
    ctx.dirty |= PENDING


def unlock_pending(ctx: Context) -> None:
    """Pending points whose returns window has ended become spendable."""
    keep = []
    for entry in sorted(ctx.state.pending, key=lambda e: e[0]):
        unlock_at, points, kind, tx, source = entry
        if unlock_at <= ctx.at:
            credit(ctx, kind, points, source=source)
            ctx.earned(points)
            record = ctx.state.transactions.get(tx)
            if record is not None:
                bought_at, bought, earned, returned, reversed_points, _ = \
                    transaction_fields(record)
                _transactions(ctx)[tx] = transaction_record(bought_at, bought, earned, returned,
                                                            reversed_points, False)
        else:
            keep.append(entry)
    if len(keep) != len(ctx.state.pending):
        ctx.state.pending = keep
        ctx.dirty |= PENDING
        ctx.timers_dirty = True


def expire_lots(ctx: Context) -> None:
    """Write ``expire`` entries for lots past their date, oldest first."""
    if not ctx.state.lots or ctx.state.lots[0] > ctx.at:
        return
    lots = _lots(ctx)
    while lots and lots[0] <= ctx.at:
        ctx.timers_dirty = True
        remaining = lots[1]
        del lots[:2]
        taken = min(remaining, ctx.state.balance)
        if taken > 0:
            ctx.post("expire", -taken)


def count_purchase(ctx: Context, amount: float) -> None:
    state = ctx.state
    state.spend_total += amount
    state.purchases_total += 1
    days = state.spend_days
    if days is ctx.base.spend_days:
        days = state.spend_days = days.copy()
    bucket_add(days, ctx.day, amount)
    ctx.dirty |= SPEND_TOTAL | PURCHASES_TOTAL


def keep_purchase(ctx: Context, tx: str, amount: float, points: int) -> None:
    """Keep the purchase's record for returns, with the standard ``points`` it earned (its
    multiplier bonus included: written once, after the purchase's scenarios ran)."""
    state = ctx.state
    transactions = _transactions(ctx)
    transactions[tx] = transaction_record(ctx.at, amount, max(points, 0), 0.0, 0,
                                          bool(ctx.settings.pending_days))
    if len(transactions) > MAX_TRANSACTIONS:
        del transactions[next(iter(transactions))]
    horizon = ctx.at - HISTORY_DAYS * DAY
    if transaction_time(next(iter(transactions.values()))) < horizon:
        state.transactions = {t: r for t, r in transactions.items()
                              if transaction_time(r) >= horizon}


def reverse_return(ctx: Context, tx: str, amount: float) -> None:
    state = ctx.state
    record = state.transactions.get(tx)
    if record is None:
        ctx.reject("unknown_transaction", [{"field": "data.transaction",
                                            "problem": f"no purchase {tx!r} among this "
                                                       f"member's last {MAX_TRANSACTIONS} "
                                                       f"purchases of the last {HISTORY_DAYS} "
                                                       f"days"}])
        return
    bought_at, bought, points, returned, reversed_points, pending = transaction_fields(record)
    if amount > bought - returned + 1e-9:
        ctx.reject("invalid_return", [{"field": "data.amount",
                                       "problem": f"returns {amount} but only "
                                                  f"{round(bought - returned, 2)} of the "
                                                  f"purchase is left to return"}])
        return
    returned += amount
    target = round_points(points * returned / bought, "round") if bought else points
    to_reverse = max(0, min(points, target) - reversed_points)
    state.spend_total -= amount
    bought_day = day_number(bought_at)
    days = state.spend_days.copy()
    for index in range(0, len(days), 2):
        if days[index] == bought_day:
            days[index + 1] = max(0.0, days[index + 1] - amount)
    state.spend_days = days
    ctx.dirty |= SPEND_TOTAL
    if pending:
        remaining = to_reverse
        keep = []
        for entry in state.pending:
            if entry[3] == tx and remaining > 0:
                cut = min(entry[1], remaining)
                remaining -= cut
                if entry[1] - cut > 0:
                    keep.append([*entry[:1], entry[1] - cut, *entry[2:]])
            else:
                keep.append(entry)
        state.pending = keep
        ctx.dirty |= PENDING
    else:
        taken = debit(ctx, "reversal", to_reverse)
        if taken:
            state.points_earned_total = max(0, state.points_earned_total - taken)
            ctx.dirty |= POINTS_EARNED_TOTAL
    _transactions(ctx)[tx] = transaction_record(bought_at, bought, points, returned,
                                                reversed_points + to_reverse, pending)


def standard_bonus(ctx: Context, points: int, tx: str | None, scenario: str) -> None:
    """The multiplier bonus on a standard addition: its own ``bonus`` entry right after the
    base entry (held pending with it when the base, a purchase's, is pending)."""
    if points <= 0:
        return
    if tx is not None:
        ctx.purchase_bonus += points
        if ctx.settings.pending_days:
            hold(ctx, points, "bonus", tx)
            return
    credit(ctx, "bonus", points, scenario)
    ctx.earned(points)
