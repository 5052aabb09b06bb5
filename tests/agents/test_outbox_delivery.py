"""Outbox delivery against real HTTP receivers on loopback: retries and backoff, signatures,
permanent failures, timeouts, dead-letters, status events, the message senders."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
import faust
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agents import signing
from agents.batching import handlers_of, self_acking_of
from agents.metrics import REGISTRY
from agents.outbox_delivery import (DLQ_DELIVERY_FAILED, DLQ_INVALID_RECORD, DeliverySettings,
                                    LogSender, OutboxBatches, OutboxDelivery, SendResult,
                                    WebhookRelaySender, register)
from tests.support import free_port

SECRET = "whsec-test-0123456789"


@dataclass
class Call:
    method: str
    path: str
    headers: dict
    body: bytes


class Receiver:
    """A webhook receiver: answers calls from a script (status, (status, headers) or "hang");
    the last answer repeats."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers) or [200]
        self.calls: list[Call] = []
        self.release = asyncio.Event()
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(Call(request.method, request.path, dict(request.headers),
                               await request.read()))
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if answer == "hang":
            await self.release.wait()
            return web.Response(status=200)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=free_port())
        await self.server.start_server()
        return self

    def url(self, path: str = "/hook") -> str:
        return str(self.server.make_url(path))

    async def stop(self) -> None:
        self.release.set()
        await self.server.close()


class Sleeps(list):
    """Injected sleep: records the backoff schedule without waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Sink:
    """Collects dead-letters and status events (the faust topics in the worker)."""

    def __init__(self) -> None:
        self.dead: list[tuple[str, list[dict], object]] = []
        self.statuses: list[tuple[str, dict]] = []

    async def dead_letter(self, reason, details, source) -> None:
        self.dead.append((reason, details, source))

    async def record_status(self, member, event) -> None:
        self.statuses.append((member, event))


@pytest.fixture
async def receivers():
    started: list[Receiver] = []

    async def make(*answers) -> Receiver:
        receiver = await Receiver(*answers).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        await receiver.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def make_delivery(session, sink):
    def make(sleeps: Sleeps | None = None, **settings) -> OutboxDelivery:
        options = dict(webhook_secret=SECRET, message_webhook_url="")
        options.update(settings)
        return OutboxDelivery(DeliverySettings(**options), session=session,
                              sleep=sleeps if sleeps is not None else Sleeps(),
                              dead_letter=sink.dead_letter, record_status=sink.record_status,
                              clock=lambda: 1_760_000_000.0)
    return make


def webhook(url: str, record_id: str = "wh-1", **extra) -> dict:
    record = {"id": record_id, "member": "M-1", "time": 1_760_000_000.0, "channel": "webhook",
              "url": url, "method": "POST", "body": {"member": "M-1", "points": 100},
              "scenario": "sc-1"}
    record.update(extra)
    return record


def message(record_id: str = "msg-1", channel: str = "email") -> dict:
    return {"id": record_id, "member": "M-1", "time": 1_760_000_000.0, "channel": channel,
            "subject": "Hello Alice", "body": "Alice, your code is SECRET-CODE-42",
            "title": None, "target": None, "user": None, "scenario": "sc-1",
            "status": "queued"}


def counted(channel: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("tillstream_outbox_deliveries_total",
                                     {"channel": channel, "outcome": outcome}) or 0.0


async def test_fails_twice_then_delivers_with_a_valid_signature(receivers, make_delivery, sink):
    receiver = await receivers(500, 500, 200)
    sleeps = Sleeps()
    before = counted("webhook", "delivered")
    outcome = await make_delivery(sleeps).deliver(webhook(receiver.url()))

    assert len(receiver.calls) == 3
    assert outcome.delivered and outcome.outcome == "delivered" and outcome.attempts == 3
    assert sleeps == [0.5, 1.0]
    delivered = receiver.calls[-1]
    assert orjson.loads(delivered.body) == {"member": "M-1", "points": 100}
    assert delivered.headers["Content-Type"] == "application/json"
    assert signing.verify(SECRET, delivered.headers[signing.SIGNATURE_HEADER], delivered.body)
    assert [call.headers[signing.DELIVERY_HEADER] for call in receiver.calls] == ["wh-1"] * 3
    assert [call.headers[signing.ATTEMPT_HEADER] for call in receiver.calls] == ["1", "2", "3"]
    assert sink.dead == []
    assert sink.statuses == [("M-1", {
        "id": "wh-1:status", "type": "message.status", "member": "M-1",
        "time": "2025-10-09T08:53:20+00:00", "brand": "default",
        "data": {"message": "wh-1", "status": "delivered"}})]
    assert counted("webhook", "delivered") == before + 1


async def test_a_400_is_permanent_one_call_and_dead_lettered(receivers, make_delivery, sink):
    receiver = await receivers(400)
    sleeps = Sleeps()
    source = object()
    outcome = await make_delivery(sleeps).deliver(webhook(receiver.url()), source)

    assert len(receiver.calls) == 1 and sleeps == []
    assert outcome.status == "failed" and outcome.outcome == "rejected"
    assert outcome.http_status == 400 and outcome.dead_lettered
    [(reason, details, dead_source)] = sink.dead
    assert reason == DLQ_DELIVERY_FAILED and dead_source is source
    assert details[0]["http_status"] == 400 and details[0]["attempts"] == 1
    assert [event["data"]["status"] for _, event in sink.statuses] == ["failed"]


async def test_408_429_and_5xx_are_retried_and_retry_after_lengthens_the_wait(
        receivers, make_delivery):
    receiver = await receivers(408, (429, {"Retry-After": "7"}), 503, 200)
    sleeps = Sleeps()
    outcome = await make_delivery(sleeps).deliver(webhook(receiver.url()))
    assert outcome.delivered and len(receiver.calls) == 4
    assert sleeps == [0.5, 7.0, 2.0]


async def test_a_receiver_that_never_answers_times_out_then_fails(receivers, make_delivery,
                                                                  sink):
    receiver = await receivers("hang")
    sleeps = Sleeps()
    delivery = make_delivery(sleeps, timeout=0.1, attempts=3)
    outcome = await asyncio.wait_for(delivery.deliver(webhook(receiver.url())), 3)

    assert len(receiver.calls) == 3 and sleeps == [0.5, 1.0]
    assert outcome.status == "failed" and outcome.outcome == "exhausted"
    assert outcome.error == "timeout" and outcome.attempts == 3
    assert [reason for reason, _, _ in sink.dead] == [DLQ_DELIVERY_FAILED]
    assert sink.statuses[0][1]["data"]["status"] == "failed"


async def test_connection_errors_are_retried(make_delivery, sink, caplog):
    caplog.set_level(logging.INFO, logger="agents.outbox_delivery")
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{free_port()}/hook?token=query-secret"
    outcome = await make_delivery(sleeps, attempts=2).deliver(webhook(url))
    assert outcome.outcome == "exhausted" and outcome.attempts == 2 and sleeps == [0.5]
    assert outcome.http_status is None and outcome.error
    assert len(sink.dead) == 1
    assert SECRET not in caplog.text and "query-secret" not in caplog.text


async def test_string_bodies_and_get(receivers, make_delivery):
    receiver = await receivers(204)
    delivery = make_delivery()
    await delivery.deliver(webhook(receiver.url(), "wh-text", body="points: {{x}}"))
    await delivery.deliver(webhook(receiver.url(), "wh-json", body='{"a": 1}', method="put"))
    await delivery.deliver(webhook(receiver.url(), "wh-get", method="GET"))
    await delivery.deliver(webhook(receiver.url(), "wh-none", body=None))
    text, json_string, get, empty = receiver.calls
    assert text.body == b"points: {{x}}"
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert json_string.method == "PUT" and json_string.body == b'{"a": 1}'
    assert json_string.headers["Content-Type"] == "application/json"
    assert get.method == "GET" and get.body == b""
    assert empty.method == "POST" and empty.body == b""
    for call in receiver.calls:
        assert signing.verify(SECRET, call.headers[signing.SIGNATURE_HEADER], call.body)


async def test_without_a_secret_requests_are_unsigned(receivers, make_delivery):
    receiver = await receivers(200)
    outcome = await make_delivery(webhook_secret="").deliver(webhook(receiver.url()))
    assert outcome.delivered
    assert signing.SIGNATURE_HEADER not in receiver.calls[0].headers


def test_signature_verification_rejects_tampering():
    body = b'{"member": "M-1", "points": 100}'
    header = signing.sign(SECRET, body, timestamp=1_760_000_000)
    now = 1_760_000_010
    assert signing.verify(SECRET, header, body, now=now)
    assert not signing.verify(SECRET, header, b'{"member": "M-1", "points": 900}', now=now)
    assert not signing.verify("another-secret", header, body, now=now)
    assert not signing.verify(SECRET, header, body, now=now + 3600)          # replayed late
    assert signing.verify(SECRET, header, body, tolerance=None, now=now + 3600)
    forged_time = header.replace("t=1760000000", "t=1760000005")
    assert not signing.verify(SECRET, forged_time, body, now=now)
    for malformed in ("", "garbage", "t=abc,v1=00", "v1=00", "t=1760000000"):
        assert not signing.verify(SECRET, malformed, body, now=now)
    rotated = f"{header},v1={'0' * 64}"
    assert signing.verify(SECRET, rotated, body, now=now)
    assert not signing.verify("", header, body, now=now)


async def test_log_sender_logs_only_ids(make_delivery, sink, caplog):
    caplog.set_level(logging.INFO, logger="agents.outbox_delivery")
    delivery = make_delivery()
    assert isinstance(delivery.messages, LogSender)
    before = counted("sms", "logged")
    outcome = await delivery.deliver(message("msg-7", channel="sms"))

    assert outcome.status == "logged" and outcome.outcome == "logged"
    assert sink.dead == []
    assert sink.statuses[0][1]["id"] == "msg-7:status"
    assert sink.statuses[0][1]["data"] == {"message": "msg-7", "status": "logged"}
    assert "msg-7" in caplog.text and "sms" in caplog.text and "M-1" in caplog.text
    assert "Alice" not in caplog.text and "SECRET-CODE-42" not in caplog.text
    assert counted("sms", "logged") == before + 1


async def test_relay_sender_posts_messages_signed(receivers, make_delivery, sink):
    receiver = await receivers(500, 202)
    sleeps = Sleeps()
    delivery = make_delivery(sleeps, message_webhook_url=receiver.url("/gateway"))
    assert isinstance(delivery.messages, WebhookRelaySender)
    record = message("msg-2", channel="push")
    outcome = await delivery.deliver(record)

    assert outcome.delivered and len(receiver.calls) == 2 and sleeps == [0.5]
    call = receiver.calls[-1]
    assert call.path == "/gateway" and call.method == "POST"
    assert orjson.loads(call.body) == {k: v for k, v in record.items() if k != "status"}
    assert call.headers[signing.DELIVERY_HEADER] == "msg-2"
    assert signing.verify(SECRET, call.headers[signing.SIGNATURE_HEADER], call.body)
    assert sink.statuses[0][1]["data"]["status"] == "delivered"


async def test_invalid_records_are_dead_lettered_not_sent(make_delivery, sink):
    delivery = make_delivery()
    outcome = await delivery.process(b"{not json", source="msg")
    assert outcome.outcome == "invalid" and outcome.record_id is None
    bad_url = await delivery.deliver(webhook("ftp://example.com/x", "wh-bad"))
    unknown = await delivery.deliver(dict(message("msg-3"), channel="fax"))
    assert (bad_url.outcome, unknown.outcome, unknown.channel) == ("invalid", "invalid",
                                                                   "unknown")
    assert [reason for reason, _, _ in sink.dead] == [DLQ_INVALID_RECORD] * 3
    assert sink.dead[0][2] == "msg"
    assert sink.dead[1][1][0]["field"] == "url"
    # no id or member: no status event; otherwise the record is marked failed
    assert [(member, event["data"]) for member, event in sink.statuses] == [
        ("M-1", {"message": "wh-bad", "status": "failed"}),
        ("M-1", {"message": "msg-3", "status": "failed"})]


async def test_a_raising_sender_fails_the_record_without_stopping(make_delivery, sink):
    class Broken:
        async def send(self, record: dict) -> SendResult:
            raise RuntimeError("boom")

    delivery = make_delivery()
    delivery.messages = Broken()
    outcome = await delivery.deliver(message("msg-4"))
    assert outcome.status == "failed" and outcome.outcome == "rejected"
    assert outcome.error == "RuntimeError" and len(sink.dead) == 1


def test_settings_from_env_and_backoff_schedule():
    settings = DeliverySettings.from_env({
        "TILLSTREAM_WEBHOOK_SECRET": SECRET,
        "TILLSTREAM_MESSAGE_WEBHOOK_URL": "https://gw.example/send?key=abc",
        "TILLSTREAM_DELIVERY_TIMEOUT": "2.5", "TILLSTREAM_DELIVERY_ATTEMPTS": "7",
        "TILLSTREAM_DELIVERY_BACKOFF_CAP": "3"})
    assert (settings.timeout, settings.attempts, settings.concurrency) == (2.5, 7, 16)
    assert [settings.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert SECRET not in repr(settings) and "key=abc" not in repr(settings)
    defaults = DeliverySettings.from_env({})
    assert (defaults.webhook_secret, defaults.message_webhook_url, defaults.timeout,
            defaults.attempts) == ("", "", 5.0, 5)
    assert DeliverySettings.coerce(settings) is settings
    with pytest.raises(ValueError):
        DeliverySettings(attempts=0)


async def test_at_most_concurrency_http_deliveries_at_once(receivers, make_delivery, sink):
    receiver = await receivers("hang")
    delivery = make_delivery(concurrency=2)
    running = [asyncio.ensure_future(delivery.deliver(webhook(receiver.url(), f"wh-{i}")))
               for i in range(5)]
    await asyncio.sleep(0.3)
    assert len(receiver.calls) == 2
    receiver.release.set()
    outcomes = await asyncio.gather(*running)
    assert [o.status for o in outcomes] == ["delivered"] * 5
    assert len(receiver.calls) == 5


class Consumer:
    """What OutboxBatches uses of the worker's consumer: acknowledgements."""

    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    def acknowledge(self, tp, offset: int, generation: int) -> None:
        self.acked.append((offset, generation))


@dataclass
class Record:
    value: bytes
    offset: int


async def test_a_batch_returns_at_once_and_each_record_is_acked_when_delivered(
        receivers, make_delivery, sink):
    receiver = await receivers("hang")
    app = type("App", (), {"consumer": Consumer(), "consumer_generation_id": 7})()
    batches = OutboxBatches(app, make_delivery(concurrency=1))
    records = [Record(orjson.dumps(webhook(receiver.url(), "wh-0")), 10),
               Record(orjson.dumps(message("msg-1")), 11)]
    await asyncio.wait_for(batches.handle(("outbox", 0), records), 1)
    await asyncio.sleep(0.2)
    # the message (no gateway: logged) is done and acked; the webhook waits on its receiver
    assert app.consumer.acked == [(11, 7)]
    assert [member for member, _ in sink.statuses] == ["M-1"]
    receiver.release.set()
    await batches.drain()
    assert app.consumer.acked == [(11, 7), (10, 7)]
    assert sorted(e["data"]["status"] for _, e in sink.statuses) == ["delivered", "logged"]


def test_register_puts_the_outbox_on_the_batch_path_acked_per_record():
    app = faust.App("ts-outbox-test", broker="kafka://127.0.0.1:1", key_serializer="raw",
                    value_serializer="raw")
    batches = register(app, DeliverySettings(webhook_secret=SECRET, concurrency=4))
    assert handlers_of(app)["ts-outbox-test-outbox"] == batches.handle
    assert self_acking_of(app) == {"ts-outbox-test-outbox"}
    assert isinstance(batches.delivery, OutboxDelivery)
    assert isinstance(batches.delivery.messages, LogSender)
