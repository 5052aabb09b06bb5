"""The two-step reward order between the member's partition and the reward's: reserve the
stock, then spend the points — never one without the other."""

from __future__ import annotations

from engine.effects import SendEvent
from engine.side import apply_reward
from tests.engine.driver import World

REWARDS = {"mug": {"name": "Mug", "kind": "physical", "points": 300, "stock": 1},
           "voucher": {"name": "Voucher", "kind": "digital", "points": 100, "stock": None}}


class Shop(World):
    """A world whose ``rewards`` messages are answered by the reward-stock logic."""

    def __init__(self, **objects: dict) -> None:
        super().__init__({"points_per_unit": 1}, rewards=REWARDS, **objects)
        self.stock: dict = {}
        self.answers: dict = {}

    def deliver_rewards(self) -> None:
        while any(e.topic == "rewards" for e in self.outbox):
            pending = [e for e in self.outbox if e.topic == "rewards"]
            self.outbox = [e for e in self.outbox if e.topic != "rewards"]
            for send in pending:
                self.stock[send.key], replies = apply_reward(
                    self.stock.get(send.key), send.event, self.program,
                    self.answers.setdefault(send.key, {}))
                for reply in replies:
                    if isinstance(reply, SendEvent):
                        self.apply_document(reply.event)


def test_an_order_reserves_stock_then_redeems_the_points():
    shop = Shop(triggers={"mug-ordered": {"type": "reward_ordered", "reward": "mug"}},
                scenarios={"thanks": {"name": "Thanks", "trigger": "mug-ordered", "actions": [
                    {"type": "message.email", "subject": "Order", "body": "Mug on its way"}]}})
    shop.join("ola")
    shop.send("ola", "purchase", transaction="t1", amount=500.0)
    shop.send("ola", "reward.ordered", reward="mug")
    assert shop.state("ola").balance == 500, "nothing is spent before the stock is reserved"
    shop.deliver_rewards()
    assert shop.ledger("ola")[-1] == ("redeem", -300)
    assert shop.state("ola").balance == 200
    assert [m.body for m in shop.messages("ola")] == ["Mug on its way"]
    assert shop.stock["mug"]["reserved"] == 1


def test_a_digital_reward_fires_reward_digital_issued():
    shop = Shop(scenarios={"code": {"name": "Code", "trigger": "reward.digital_issued",
                                    "actions": [{"type": "message.internal",
                                                 "body": "Your voucher is ready"}]}})
    shop.join("ola")
    shop.send("ola", "points.added", points=150)
    shop.send("ola", "reward.ordered", reward="voucher")
    shop.deliver_rewards()
    assert shop.state("ola").balance == 50
    assert [m.body for m in shop.messages("ola")] == ["Your voucher is ready"]


def test_out_of_stock_spends_nothing_and_tells_the_member():
    shop = Shop()
    for member in ("ola", "jan"):
        shop.join(member)
        shop.send(member, "points.added", points=400)
        shop.send(member, "reward.ordered", reward="mug")
    shop.deliver_rewards()
    assert shop.state("ola").balance == 100
    assert shop.state("jan").balance == 400
    assert "out of stock" in shop.messages("jan")[-1].body
    assert shop.stock["mug"]["reserved"] == 1


def test_points_spent_meanwhile_release_the_reserved_item():
    shop = Shop()
    shop.join("ola")
    shop.send("ola", "points.added", points=300)
    shop.send("ola", "reward.ordered", reward="mug")
    shop.send("ola", "points.subtracted", points=250)
    shop.deliver_rewards()
    assert shop.state("ola").balance == 50
    assert "cancelled" in shop.messages("ola")[-1].body
    assert shop.stock["mug"]["reserved"] == 0, "the item went back to the stock"


def test_an_order_without_enough_points_is_refused_at_once():
    shop = Shop()
    shop.join("ola")
    shop.send("ola", "reward.ordered", reward="mug")
    assert [r.reason for r in shop.rejections("ola")] == ["insufficient_points"]
    assert not [e for e in shop.outbox if e.topic == "rewards"]


def test_a_scenario_gift_takes_stock_but_no_points():
    shop = Shop(scenarios={
        "welcome": {"name": "Welcome gift", "trigger": "member.joined",
                    "actions": [{"type": "reward.issue", "reward": "voucher"},
                                {"type": "reward.issue", "reward": "mug"}]},
        "code": {"name": "Code", "trigger": "reward.digital_issued",
                 "actions": [{"type": "message.internal", "body": "Voucher inside"}]}})
    shop.join("ola")
    shop.deliver_rewards()
    assert shop.state("ola").balance == 0 and shop.ledger("ola") == []
    assert [m.body for m in shop.messages("ola")] == ["Voucher inside"], "only the digital one"
    assert shop.stock["mug"]["reserved"] == 1 and shop.state("ola").orders == {}
