"""The loyalty engine in-stream (embedded mode): the seed examples flowing through the member
agent, its tables, the side agents, the timer index and the outbox topic."""

from __future__ import annotations

import pytest

from agents.embedded_transport import partition_for
from tests.support import LoyaltyClient, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def loyalty(worker_factory):
    worker = worker_factory("embedded", env={"TILLSTREAM_TEST_CLOCK": "1"}).start()
    return LoyaltyClient(worker)


def test_purchase_with_a_200_percent_multiplier_writes_two_ledger_entries(loyalty):
    loyalty.configure(
        program={"points_per_unit": 1.0},
        scenarios={"double": {"name": "Bonus 200%", "active": True,
                              "trigger": "points.standard_added",
                              "actions": [{"type": "points.multiply", "percent": 200}]}})
    loyalty.join("M-1")
    loyalty.send({"id": "p1", "type": "purchase", "member": "M-1",
                  "data": {"transaction": "t1", "amount": 100.0, "currency": "PLN",
                           "store": "S1", "till": "T1"}})
    member = loyalty.wait_member("M-1", lambda m: m["balance"] == 300)
    assert member["balance"] == 300
    entries = loyalty.ledger("M-1")
    assert [(e["kind"], e["points"]) for e in reversed(entries)] == [("earn", 100), ("bonus", 200)]


def test_scenario_executions_and_actions_are_counted_in_the_metrics(loyalty):
    loyalty.configure(
        program={"points_per_unit": 1.0},
        scenarios={"double": {"name": "Bonus 200%", "active": True,
                              "trigger": "points.standard_added",
                              "actions": [{"type": "points.multiply", "percent": 200},
                                          {"type": "tags.add", "field": "promos", "tags": ["doubled"]}]}})
    loyalty.join("M-1")
    for n in range(3):
        loyalty.send({"id": f"p{n}", "type": "purchase", "member": "M-1",
                      "data": {"transaction": f"t{n}", "amount": 10.0, "currency": "PLN",
                               "store": "S1", "till": "T1"}})
    loyalty.wait_member("M-1", lambda m: m["balance"] == 90)

    def counted():
        text = loyalty.worker.get("/metrics")[1]["raw"]
        return all(line in text for line in (
            'tillstream_scenario_executions_total{scenario="double"} 3.0',
            'tillstream_actions_total{type="points.multiply"} 3.0',
            'tillstream_actions_total{type="tags.add"} 3.0'))
    wait_until(counted, 20, message="three executions of two actions in the metrics")


def test_double_points_in_march_is_inactive_on_the_first_of_april(loyalty):
    loyalty.configure(
        program={"points_per_unit": 1.0},
        scenarios={"march": {"name": "Double points in March", "active": True,
                             "trigger": "points.standard_added",
                             "window": {"from": "2026-03-01T00:00:00Z",
                                        "to": "2026-04-01T00:00:00Z"},
                             "actions": [{"type": "points.multiply", "percent": 100}]}})
    loyalty.join("M-1", time="2026-02-01T00:00:00Z")
    for day, tx in (("2026-03-31T12:00:00Z", "t-march"), ("2026-04-01T12:00:00Z", "t-april")):
        loyalty.send({"id": tx, "type": "purchase", "member": "M-1", "time": day,
                      "data": {"transaction": tx, "amount": 50.0, "currency": "PLN",
                               "store": "S1", "till": "T1"}})
    loyalty.wait_member("M-1", lambda m: m["balance"] == 150)
    kinds = [(e["kind"], e["points"], e["event"]) for e in reversed(loyalty.ledger("M-1"))]
    assert kinds == [("earn", 50, "t-march"), ("bonus", 50, "t-march"),
                     ("earn", 50, "t-april")]


def test_referral_across_two_partitions_awards_the_referrer_10_then_20(loyalty):
    referrer, friend = two_members_on_different_partitions()
    loyalty.configure(
        program={"points_per_unit": 0.0, "referral": {"qualify": {"spend": 200}}},
        scenarios={
            "referral-made": {"name": "Thanks for the referral", "active": True,
                              "trigger": "referral.made",
                              "actions": [{"type": "points.add", "points": 10}]},
            "referral-qualified": {"name": "Successful referral", "active": True,
                                   "trigger": "referral.qualified",
                                   "actions": [{"type": "points.add", "points": 20}]}})
    loyalty.join(referrer)
    loyalty.wait_member(referrer, lambda m: True)
    loyalty.join(friend, referrer=referrer)
    loyalty.wait_member(referrer, lambda m: m["balance"] == 10)
    for n, amount in enumerate((120.0, 80.0, 500.0)):
        loyalty.send({"id": f"f-{n}", "type": "purchase", "member": friend,
                      "data": {"transaction": f"ft-{n}", "amount": amount, "currency": "PLN",
                               "store": "S1", "till": "T1"}})
    loyalty.wait_member(friend, lambda m: m["last_activity"] is not None)
    member = loyalty.wait_member(referrer, lambda m: m["balance"] == 30)
    assert member["referral"] == {"referrer": None, "referred": 1, "qualified": 1}
    assert loyalty.member(friend)["referral"]["referrer"] == referrer


def test_three_visits_in_a_row_give_a_bonus_and_a_thank_you_message(loyalty):
    loyalty.configure(
        program={"streak_period": "day"},
        triggers={"three-visits": {"type": "visits_in_row", "count": 3}},
        scenarios={"streak": {"name": "Three days in a row", "active": True,
                              "trigger": "three-visits",
                              "actions": [{"type": "points.add", "points": 50},
                                          {"type": "message.internal",
                                           "body": "Thank you {{member.id}}, 3 visits in a row!"}]}})
    loyalty.join("M-1", time="2026-05-01T08:00:00Z")
    for day in ("01", "02", "03"):
        loyalty.send({"id": f"v-{day}", "type": "visit", "member": "M-1",
                      "time": f"2026-05-{day}T10:00:00Z", "data": {"store": "S1"}})
    member = loyalty.wait_member("M-1", lambda m: m["balance"] == 50)
    assert member["streak"]["current"] == 3
    messages = loyalty.messages("M-1")
    assert [m["body"] for m in messages] == ["Thank you M-1, 3 visits in a row!"]


def test_entering_the_vip_segment_sends_a_message(loyalty):
    loyalty.configure(
        program={"points_per_unit": 1.0},
        segments={"vip": {"name": "VIP", "rule": {"field": "balance", "op": ">=", "value": 500}}},
        triggers={"vip-entered": {"type": "segment_entered", "segment": "vip"}},
        scenarios={"welcome-vip": {"name": "Welcome to VIP", "active": True,
                                   "trigger": "vip-entered",
                                   "actions": [{"type": "message.email", "subject": "VIP",
                                                "body": "Welcome to VIP, {{member.profile.first_name}}"}]}})
    loyalty.join("M-1", profile={"first_name": "Ola", "email": "ola@example.com"})
    loyalty.send({"id": "p1", "type": "purchase", "member": "M-1",
                  "data": {"transaction": "t1", "amount": 600.0, "currency": "PLN",
                           "store": "S1", "till": "T1"}})
    member = loyalty.wait_member("M-1", lambda m: "vip" in m["segments"])
    assert member["balance"] == 600
    messages = loyalty.wait_messages("M-1", 1)
    assert messages[0]["channel"] == "email"
    assert messages[0]["body"] == "Welcome to VIP, Ola"


def test_phone_change_sends_a_confirmation_email(loyalty):
    loyalty.configure(
        triggers={"phone-edited": {"type": "profile_edited", "fields": ["phone"]}},
        scenarios={"confirm-phone": {"name": "Confirm phone", "active": True,
                                     "trigger": "phone-edited",
                                     "actions": [{"type": "message.email",
                                                  "subject": "Confirm your number",
                                                  "body": "Is {{member.profile.phone}} yours?"}]}})
    loyalty.join("M-1", profile={"phone": "+48500000001", "email": "a@example.com"})
    loyalty.send({"id": "u1", "type": "member.profile_updated", "member": "M-1",
                  "data": {"profile": {"city": "Kraków"}}})
    loyalty.send({"id": "u2", "type": "member.profile_updated", "member": "M-1",
                  "data": {"profile": {"phone": "+48500000002"}}})
    messages = loyalty.wait_messages("M-1", 1)
    assert [m["body"] for m in messages] == ["Is +48500000002 yours?"]


def test_inactivity_timer_fired_by_the_injected_clock_deletes_the_account(loyalty):
    loyalty.configure(
        triggers={"inactive-24m": {"type": "inactivity", "days": 730}},
        scenarios={"delete-inactive": {"name": "Delete inactive accounts", "active": True,
                                       "trigger": "inactive-24m",
                                       "actions": [{"type": "member.delete"}]}})
    loyalty.join("M-1", profile={"email": "old@example.com", "first_name": "Jan"})
    loyalty.send({"id": "p1", "type": "points.added", "member": "M-1",
                  "data": {"points": 40, "reason": "welcome"}})
    loyalty.wait_member("M-1", lambda m: m["balance"] == 40)
    loyalty.advance_clock(731 * 86400)
    member = loyalty.wait_member("M-1", lambda m: m["status"] == "deleted", timeout=30)
    assert member["profile"] == {}
    assert [e["points"] for e in loyalty.ledger("M-1")] == [40]


def test_the_last_reward_in_stock_goes_to_exactly_one_of_two_racing_members(loyalty):
    loyalty.configure(rewards={"mug": {"name": "Mug", "kind": "physical", "points": 100,
                                       "stock": 1}})
    first, second = two_members_on_different_partitions()
    for member in (first, second):
        loyalty.join(member)
        loyalty.send({"id": f"add-{member}", "type": "points.added", "member": member,
                      "data": {"points": 150, "reason": "test"}})
        loyalty.wait_member(member, lambda m: m["balance"] == 150)
    loyalty.send_many([{"id": f"order-{member}", "type": "reward.ordered", "member": member,
                        "data": {"reward": "mug"}} for member in (first, second)])

    def settled():
        balances = sorted(loyalty.member(m)["balance"] for m in (first, second))
        notified = sum(len(loyalty.messages(m)) for m in (first, second))
        return balances == [50, 150] and notified >= 1
    wait_until(settled, 30, message="one order to win and one to be refused")
    redeemed = [e for m in (first, second) for e in loyalty.ledger(m) if e["kind"] == "redeem"]
    assert [e["points"] for e in redeemed] == [-100]


def two_members_on_different_partitions(partitions: int = 4) -> tuple[str, str]:
    first = "M-A"
    for n in range(1000):
        other = f"M-B{n}"
        if partition_for(other.encode(), partitions) != partition_for(first.encode(), partitions):
            return first, other
    raise AssertionError("no two partitions found")


class FlakyReceiver:
    """A webhook receiver that answers 500 twice, then 200, recording every request."""

    def __init__(self, failures: int = 2) -> None:
        import http.server
        import threading

        calls = self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append((dict(self.headers), body))
                self.send_response(500 if len(calls) <= failures else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_a_webhook_action_is_delivered_on_the_third_attempt_with_a_valid_signature(
        worker_factory):
    from agents.signing import verify

    receiver = FlakyReceiver(failures=2)
    secret = "whsec-test-0123"
    worker = worker_factory("embedded", env={"TILLSTREAM_WEBHOOK_SECRET": secret}).start()
    loyalty = LoyaltyClient(worker)
    try:
        loyalty.configure(scenarios={"crm-sync": {
            "name": "Tell the CRM", "active": True, "trigger": "member.joined",
            "actions": [{"type": "webhook", "url": receiver.url, "method": "POST",
                         "body": {"member": "{{member.id}}"}}]}})
        loyalty.join("M-1")
        wait_until(lambda: len(receiver.calls) >= 3, 30, message="three delivery attempts")
        messages = wait_until(lambda: [m for m in loyalty.messages("M-1")
                                       if m["status"] == "delivered"], 20,
                              message="delivery recorded on the member")
        assert messages[0]["channel"] == "webhook"
        headers, body = receiver.calls[2]
        lower = {k.lower(): v for k, v in headers.items()}
        assert verify(secret, lower["x-tillstream-signature"], body)
        assert not verify("another-secret", lower["x-tillstream-signature"], body)
        assert len({h["X-Tillstream-Delivery"] for h, _ in receiver.calls}) == 1
        assert len(receiver.calls) == 3
    finally:
        receiver.close()


def test_a_single_use_code_goes_to_one_member_and_the_dry_pool_is_reported(loyalty):
    loyalty.configure(promo_pools={"welcome": {"name": "Welcome codes", "kind": "single_use",
                                               "codes": ["WELCOME-1"]}},
                      scenarios={"welcome-code": {
                          "name": "Welcome code", "active": True, "trigger": "member.joined",
                          "actions": [{"type": "reward.issue", "pool": "welcome"}]}})
    loyalty.join("M-1")
    first = loyalty.wait_messages("M-1", 1)
    assert first[0]["body"] == "Your code: WELCOME-1"
    assert loyalty.member("M-1")["codes"] == [{"pool": "welcome", "code": "WELCOME-1"}]
    loyalty.join("M-2")

    def dry_reported():
        text = loyalty.worker.get("/metrics")[1]["raw"]
        return 'tillstream_promo_pool_dry_total{pool="welcome"} 1.0' in text
    wait_until(dry_reported, 20, message="the dry pool to be reported")
    assert loyalty.member("M-2")["codes"] == []
    status, body = loyalty.worker.post("/v1/promo-pools/welcome/codes", {"codes": ["MORE-1"]})
    assert status == 202
    loyalty.join("M-3")
    assert loyalty.wait_messages("M-3", 1)[0]["body"] == "Your code: MORE-1"
