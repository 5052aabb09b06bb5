"""Analytics deltas: what one event adds to the aggregates, from the member views around it."""

from __future__ import annotations

from collections import namedtuple

from engine.analytics import analytics_deltas, flatten, member_view, sum_fresh

Entry = namedtuple("Entry", "kind points")


def view(tier=None, segments=(), status="active", last_activity="2026-06-02T10:00:00+00:00"):
    return {"brand": "default", "tier": tier, "segments": list(segments), "status": status,
            "last_activity": last_activity}


def totals(deltas):
    out = {}
    for dimension, value, metric, amount in deltas:
        key = (dimension, value, metric)
        out[key] = out.get(key, 0) + amount
    return out


def test_a_join_counts_one_member_for_the_brand_the_tier_and_its_activity_day():
    got = totals(analytics_deltas(None, view(), "member.joined", 0, {}, []))
    assert got == {("brand", "default", "members"): 1, ("tier", "none", "members"): 1,
                   ("last_active_day", "none|2026-06-02", "members"): 1}


def test_a_purchase_adds_revenue_points_and_till_load_everywhere_it_belongs():
    before = view(tier="gold", segments=["vip"], last_activity="2026-06-01T09:00:00+00:00")
    after = view(tier="gold", segments=["vip"])
    data = {"amount": 120.0, "store": "S1", "till": "T3"}
    got = totals(analytics_deltas(before, after, "purchase", 1780394400.0, data,
                                  [Entry("earn", 120), Entry("bonus", 60)]))
    assert got[("brand", "default", "points_issued")] == 180
    assert got[("segment", "vip", "points_issued")] == 180
    assert got[("store", "S1", "points_issued")] == 180
    assert got[("till", "T3", "revenue")] == 120.0
    assert got[("tier", "gold", "purchases")] == 1
    assert got[("till_hour", "T3|2026-06-02T10", "purchases")] == 1
    assert got[("last_active_day", "gold|2026-06-01", "members")] == -1
    assert got[("last_active_day", "gold|2026-06-02", "members")] == 1
    assert ("brand", "default", "members") not in got


def test_a_tier_change_and_a_segment_exit_move_the_member_between_rows():
    got = totals(analytics_deltas(view(tier="silver", segments=["vip"]), view(tier="gold"),
                                  "visit", 0, {"store": "S1"}, []))
    assert got == {("tier", "silver", "members"): -1, ("tier", "gold", "members"): 1,
                   ("segment", "vip", "members"): -1,
                   ("last_active_day", "silver|2026-06-02", "members"): -1,
                   ("last_active_day", "gold|2026-06-02", "members"): 1}


def test_redeemed_and_expired_points_are_counted_as_positive_amounts_and_returns_cut_revenue():
    got = totals(analytics_deltas(view(), view(), "return", 0, {"amount": 30.0},
                                  [Entry("reversal", -30), Entry("redeem", -100),
                                   Entry("expire", -5)]))
    assert got[("brand", "default", "points_redeemed")] == 100
    assert got[("brand", "default", "points_expired")] == 5
    assert got[("brand", "default", "revenue")] == -30.0
    assert ("brand", "default", "points_issued") not in got


def test_deleting_a_member_removes_it_from_every_count():
    got = totals(analytics_deltas(view(tier="gold", segments=["vip"]),
                                  view(tier=None, status="deleted", last_activity=None),
                                  "timer", 0, {}, []))
    assert got == {("brand", "default", "members"): -1, ("tier", "gold", "members"): -1,
                   ("segment", "vip", "members"): -1,
                   ("last_active_day", "gold|2026-06-02", "members"): -1}


def test_a_member_view_holds_what_the_deltas_read_with_the_day_of_the_last_activity():
    from engine.state import MemberState

    state = MemberState(id="m1", brand="b1", joined=0.0, status="active", tier="gold",
                        segments=["vip"], last_activity=1780394400.0)
    assert member_view(state) == {"brand": "b1", "status": "active", "tier": "gold",
                                  "segments": ["vip"], "last_activity": "2026-06-02"}
    assert member_view(None) is None


def test_flattened_events_name_each_key_once_and_keep_integer_counts_integers():
    keys: dict = {}
    first = flatten([("brand", "b1", "members", 1), ("tier", "gold", "revenue", 12.5)], keys)
    second = flatten([("tier", "gold", "revenue", 7.5), ("brand", "b1", "purchases", 1)], keys)
    assert list(keys) == [("brand", "b1", "members"), ("tier", "gold", "revenue"),
                          ("brand", "b1", "purchases")]
    assert first == [0, 1, 1, 12.5] and second == [1, 7.5, 2, 1]
    assert type(first[1]) is int


def test_only_events_past_the_counted_offset_are_summed():
    events = [[10, [0, 1, 1, 12.5]], [11, [1, 7.5]], [12, [0, 1, 2, 1]]]
    sums, fresh = sum_fresh(events, done=10)
    assert (sums, fresh) == ({1: 7.5, 0: 1, 2: 1}, 2)
    assert type(sums[0]) is int
    assert sum_fresh(events, done=12) == ({}, 0)
