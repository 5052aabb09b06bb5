"""Two workers on tansu: a member query sent to the worker that does not own the member is
answered with the owner's state (faust table routing)."""

from __future__ import annotations

import json

import pytest

from agents.embedded_transport import partition_for
from tests.support import TANSU_FAUST_OPTIONS, LoyaltyClient, produce_events, wait_until

pytestmark = pytest.mark.slow


def test_either_worker_answers_for_any_member(worker_factory, tansu):
    env = {"TILLSTREAM_FAUST_OPTIONS": json.dumps(
        {**TANSU_FAUST_OPTIONS, "broker_session_timeout": 30.0,
         "broker_rebalance_timeout": 30.0})}
    first = worker_factory("kafka", name="w1", env=env).start()
    second = worker_factory("kafka", name="w2", env=env).start()
    topic = f"{first.env['TILLSTREAM_APP_ID']}-events"

    def owners():
        owned = [set(w.get("/readyz")[1].get("assigned", {}).get(topic, []))
                 for w in (first, second)]
        settled = all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == {0, 1, 2, 3}
        return owned if settled else None
    owned = wait_until(owners, 60, message="the group to settle with both workers")
    members = [f"R-{n}" for n in range(12)]
    produce_events(tansu.bootstrap, topic, [
        {"id": f"join-{m}", "type": "member.joined", "member": m,
         "data": {"profile": {"first_name": m}}} for m in members] + [
        {"id": f"add-{m}", "type": "points.added", "member": m, "data": {"points": n + 1}}
        for n, m in enumerate(members)])
    LoyaltyClient(first).wait_member(members[-1], lambda m: m["balance"] == len(members), 60)
    remote = 0
    for n, member in enumerate(members):
        owner = 0 if partition_for(member.encode(), 4) in owned[0] else 1
        answers = [wait_until(lambda: (lambda r: r if r[0] == 200 else None)(
            w.get(f"/v1/members/{member}")), 30, message=member) for w in (first, second)]
        assert answers[0] == answers[1]
        assert answers[0][1]["balance"] == n + 1
        remote += 1 if owner == 1 else 0
    assert 0 < remote < len(members), "members on both workers' partitions"
