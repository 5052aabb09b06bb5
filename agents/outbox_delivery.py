"""Outbox delivery: sends what the member agent writes to ``<app>-outbox`` and records the
outcome.

Records on ``<app>-outbox`` (key = member id, value = JSON) are either a **webhook** action
(``channel: "webhook"``, ``url``, ``method``, ``body``) or a **message** (``channel`` one of
``email``, ``sms``, ``internal``, ``push``, ``staff_email``; ``subject``, ``body``, ``title``,
``target``, ``user``). Every record has a deterministic ``id``, ``member``, ``time`` and usually
``scenario``.

HTTP delivery (webhooks, and messages when a relay URL is configured)
  - One attempt = one HTTP request with a timeout (``TILLSTREAM_DELIVERY_TIMEOUT``, default 5 s;
    connect and read together). Redirects are not followed.
  - 2xx → ``delivered``. 408, 429, 5xx, timeouts and connection errors → retried; other statuses
    (3xx, 4xx) → permanent failure, no retry (the same request would get the same answer).
  - Up to ``TILLSTREAM_DELIVERY_ATTEMPTS`` attempts (default 5), sleeping
    ``min(cap, 0.5 s × 2^(n-1))`` before retry n (0.5, 1, 2, 4 s; cap 30 s). A numeric
    ``Retry-After`` answer lengthens that sleep, up to the cap. No jitter: the outbox is spread
    over partitions and workers already, and tests assert the exact schedule.
  - Headers: ``X-Tillstream-Delivery: <record id>`` (identical on every attempt and every
    redelivery: delivery is **at-least-once**, so receivers dedupe on it),
    ``X-Tillstream-Attempt: <n>``, and ``X-Tillstream-Signature`` (below).
  - After a permanent failure or the last attempt, the record goes to ``<app>-dlq`` with reason
    ``delivery_failed`` (details: attempts, last HTTP status or error class).

Signature (agents/signing.py). With ``TILLSTREAM_WEBHOOK_SECRET`` set, every request carries
``X-Tillstream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>`` over the
raw body bytes as sent. A receiver verifies it like this::

    import hashlib, hmac, time
    def verify(secret: bytes, header: str, raw_body: bytes, tolerance=300) -> bool:
        items = [part.split("=", 1) for part in header.split(",")]
        t = int(next(v for k, v in items if k == "t"))
        expected = hmac.new(secret, f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
        return abs(time.time() - t) <= tolerance and any(
            hmac.compare_digest(expected, v) for k, v in items if k == "v1")

  (or ``agents.signing.verify(secret, header, raw_body)``); then dedupe on
  ``X-Tillstream-Delivery``. Each attempt is signed afresh, so the tolerance applies to the
  attempt, not to the first one. Without a secret, requests go out unsigned and the worker logs
  a warning at start. The secret is never logged, printed or put in a repr.

Bodies. A webhook's ``body`` is sent as the marketer wrote it: a JSON object/array is serialised
with orjson (``application/json``); a string is sent byte for byte, as ``application/json`` when
it parses as JSON and ``text/plain; charset=utf-8`` otherwise. A ``GET`` webhook sends no body
(the signature then covers the empty body), nor does a webhook without a body. Messages relayed to
``TILLSTREAM_MESSAGE_WEBHOOK_URL`` are POSTed as the outbox record itself, as JSON, without its
``status`` field: ``{"id", "member", "time", "channel", "subject", "body", "title", "target",
"user", "scenario", ...}``.

Senders (pluggable). Non-webhook channels go through a :class:`Sender` — anything with
``async def send(record) -> SendResult``. The default is :class:`WebhookRelaySender` (POST to
``TILLSTREAM_MESSAGE_WEBHOOK_URL`` with the same signing, retries and dead-lettering: the
retailer's own e-mail/SMS/push gateway sits behind that URL) when the URL is set, otherwise
:class:`LogSender`, which logs only the record id, channel, member and scenario (never subject,
body or contact data) and reports ``logged``. An SMTP or SMS-provider sender plugs in by passing
``message_sender=`` to :func:`register`. ``internal`` messages are already in the member's inbox
(``GET /v1/members/{id}/messages``); they go through the sender too, so an app can push them.

Outcome. Each record ends ``delivered``, ``failed`` or ``logged``; the worker then sends
``{"id": "<record id>:status", "type": "message.status", "member", "time", "brand",
"data": {"message": <record id>, "status": ...}}`` to the member's key on ``<app>-events`` (the
member agent stores it on the message record), and counts
``tillstream_outbox_deliveries_total{channel, outcome}`` with outcome ``delivered``, ``logged``,
``rejected`` (permanent failure), ``exhausted`` (every attempt failed) or ``invalid`` (a record
that cannot be delivered: bad JSON, unknown channel, no URL) — low-cardinality labels only.

Concurrency and acks. The outbox takes the batch path (agents/batching.py): each fetched
record starts a delivery (up to 4,096 in flight per worker), and the record is acknowledged
only when its delivery has reached its final outcome — sent, dead-lettered if failed, status
event durable. faust commits an offset only when every record before it is acknowledged, so a
crash or rebalance mid-retry redelivers the record (at-least-once) and never skips one. At most
``TILLSTREAM_DELIVERY_CONCURRENCY`` (default 16) HTTP deliveries run at once; a slow or dead
receiver holds one of them for at most attempts × timeout + backoff (~32 s with defaults)
while the others, and the member agent's events, keep going. Outbox order is not kept
(messages are independent; receivers dedupe by id).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from agents import signing
from agents.batching import batch_agent
from agents.dlq import DeadLetters
from agents.metrics import OUTBOX_DELIVERIES
from agents.topics import EVENT_RETENTION_SECONDS
from agents.topics import events_topic as declare_events_topic

logger = logging.getLogger(__name__)

WEBHOOK = "webhook"
MESSAGE_CHANNELS = frozenset({"email", "sms", "internal", "push", "staff_email"})
CHANNELS = MESSAGE_CHANNELS | {WEBHOOK}
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUSES = frozenset({408, 429})
USER_AGENT = "Tillstream-Webhooks/1"

#: Message-record statuses (what the member's ``/messages`` shows).
DELIVERED, FAILED, LOGGED = "delivered", "failed", "logged"
#: Metric outcomes (``tillstream_outbox_deliveries_total{outcome}``).
REJECTED, EXHAUSTED, INVALID = "rejected", "exhausted", "invalid"
#: DLQ reasons.
DLQ_DELIVERY_FAILED = "delivery_failed"
DLQ_INVALID_RECORD = "invalid_outbox_record"


# ---------------------------------------------------------------------------------------------
# Settings


_ENV = {
    "webhook_secret": ("TILLSTREAM_WEBHOOK_SECRET", str),
    "message_webhook_url": ("TILLSTREAM_MESSAGE_WEBHOOK_URL", str),
    "timeout": ("TILLSTREAM_DELIVERY_TIMEOUT", float),
    "attempts": ("TILLSTREAM_DELIVERY_ATTEMPTS", int),
    "backoff_base": ("TILLSTREAM_DELIVERY_BACKOFF_BASE", float),
    "backoff_factor": ("TILLSTREAM_DELIVERY_BACKOFF_FACTOR", float),
    "backoff_cap": ("TILLSTREAM_DELIVERY_BACKOFF_CAP", float),
    "concurrency": ("TILLSTREAM_DELIVERY_CONCURRENCY", int),
}


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """Delivery settings; ``from_env()`` reads ``TILLSTREAM_*`` (see ``_ENV``)."""

    #: HMAC key of ``X-Tillstream-Signature``; empty = unsigned. Never logged or repr'd.
    webhook_secret: str = field(default="", repr=False)
    #: Where non-webhook messages are POSTed; empty = :class:`LogSender`. Not repr'd either
    #: (gateway URLs often carry a token).
    message_webhook_url: str = field(default="", repr=False)
    timeout: float = 5.0
    attempts: int = 5
    backoff_base: float = 0.5
    backoff_factor: float = 2.0
    backoff_cap: float = 30.0
    concurrency: int = 16

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.attempts < 1 or self.concurrency < 1 \
                or self.backoff_base < 0 or self.backoff_factor < 1 or self.backoff_cap < 0:
            raise ValueError("invalid delivery settings: timeout > 0, attempts >= 1, "
                             "concurrency >= 1, backoff base >= 0, factor >= 1, cap >= 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "DeliverySettings":
        env = os.environ if environ is None else environ
        values = {name: convert(env[variable]) for name, (variable, convert) in _ENV.items()
                  if env.get(variable, "") != ""}
        return cls(**values)

    @classmethod
    def coerce(cls, settings_like: Any = None) -> "DeliverySettings":
        """These settings from any object with (some of) the same attribute names — e.g. the
        worker's Settings once it grows them — the environment filling in the rest."""
        if isinstance(settings_like, cls):
            return settings_like
        base = cls.from_env()
        if settings_like is None:
            return base
        return cls(**{f.name: getattr(settings_like, f.name, getattr(base, f.name))
                      for f in fields(cls)})

    def backoff(self, retry: int) -> float:
        """Sleep before retry ``retry`` (1 = the second attempt)."""
        return min(self.backoff_cap, self.backoff_base * self.backoff_factor ** (retry - 1))


# ---------------------------------------------------------------------------------------------
# Signed HTTP with retries


@dataclass(slots=True)
class SendResult:
    """What a sender did with one record."""

    status: str                      # delivered | failed | logged
    attempts: int = 0
    http_status: int | None = None   # last HTTP status, if any answer came
    error: str | None = None         # short and safe: "HTTP 500", "timeout", an error class
    permanent: bool = False          # failed before the attempts ran out


def _retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None          # an HTTP-date: ignored, the backoff applies
    return seconds if seconds >= 0 else None


def _host(url: str) -> str:
    """Only the host of a URL goes to logs (paths and queries may carry tokens)."""
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class SignedHttp:
    """Sends one body to one URL: signed, with a per-attempt timeout, retries and backoff."""

    def __init__(self, settings: DeliverySettings, session: aiohttp.ClientSession | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.sleep = sleep
        self.wall_clock = wall_clock
        self._session = session
        self._owns_session = session is None
        self._slots = asyncio.Semaphore(settings.concurrency)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
                headers={"User-Agent": USER_AGENT})
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def headers(self, body: bytes, content_type: str, delivery_id: str,
                attempt: int) -> dict[str, str]:
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT,
                   signing.DELIVERY_HEADER: delivery_id, signing.ATTEMPT_HEADER: str(attempt)}
        if self.settings.webhook_secret:
            headers[signing.SIGNATURE_HEADER] = signing.sign(
                self.settings.webhook_secret, body, int(self.wall_clock()))
        return headers

    async def send(self, url: str, method: str, body: bytes, content_type: str,
                   delivery_id: str) -> SendResult:
        """At most ``concurrency`` deliveries at once (retries and backoff included), so a
        receiver is never flooded and a dead one holds only these slots."""
        async with self._slots:
            return await self._attempts(url, method, body, content_type, delivery_id)

    async def _attempts(self, url: str, method: str, body: bytes, content_type: str,
                        delivery_id: str) -> SendResult:
        settings = self.settings
        timeout = aiohttp.ClientTimeout(total=settings.timeout)
        http_status: int | None = None
        error = "not attempted"
        delay = 0.0
        for attempt in range(1, settings.attempts + 1):
            if attempt > 1:
                await self.sleep(delay)
            retry_after = None
            try:
                async with self.session().request(
                        method, url, data=body if method != "GET" else None,
                        headers=self.headers(body, content_type, delivery_id, attempt),
                        timeout=timeout, allow_redirects=False) as response:
                    http_status = response.status
                    retry_after = _retry_after(response.headers.get("Retry-After"))
            except TimeoutError:            # asyncio's and aiohttp's timeouts alike
                http_status, error = None, "timeout"
            except (aiohttp.ClientError, OSError) as exc:
                http_status, error = None, type(exc).__name__
            else:
                if 200 <= http_status < 300:
                    return SendResult(DELIVERED, attempt, http_status)
                error = f"HTTP {http_status}"
                if not _retryable(http_status):
                    return SendResult(FAILED, attempt, http_status, error, permanent=True)
            delay = settings.backoff(attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, settings.backoff_cap))
            if attempt < settings.attempts:
                logger.info("delivery %s to %s: attempt %d/%d failed (%s), retrying in %.1fs",
                            delivery_id, _host(url), attempt, settings.attempts, error, delay)
        return SendResult(FAILED, settings.attempts, http_status, error)


# ---------------------------------------------------------------------------------------------
# Senders


class Sender(Protocol):
    """Delivers one outbox record (already validated); never raises for delivery failures."""

    async def send(self, record: dict) -> SendResult: ...


def webhook_body(body: Any) -> tuple[bytes, str]:
    """The bytes and content type of a webhook action's body (see the module docstring)."""
    if body is None:
        return b"", "text/plain; charset=utf-8"
    if isinstance(body, str):
        raw = body.encode()
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw, "text/plain; charset=utf-8"
        return raw, "application/json"
    return orjson.dumps(body), "application/json"


class WebhookSender:
    """Webhook actions: the record's own ``url``, ``method`` and ``body``."""

    def __init__(self, http: SignedHttp) -> None:
        self.http = http

    async def send(self, record: dict) -> SendResult:
        method = str(record.get("method") or "POST").upper()
        body, content_type = (b"", "application/json") if method == "GET" else \
            webhook_body(record.get("body"))
        return await self.http.send(record["url"], method, body, content_type, record["id"])


class WebhookRelaySender:
    """Messages POSTed as JSON to one configured URL (the retailer's messaging gateway)."""

    def __init__(self, http: SignedHttp, url: str) -> None:
        self.http = http
        self.url = url

    async def send(self, record: dict) -> SendResult:
        envelope = {key: value for key, value in record.items() if key != "status"}
        return await self.http.send(self.url, "POST", orjson.dumps(envelope),
                                    "application/json", record["id"])


class LogSender:
    """No gateway configured: log that the message exists (id, channel, member, scenario —
    never its texts or contact data) and report it ``logged``."""

    def __init__(self, log: logging.Logger = logger) -> None:
        self.log = log

    async def send(self, record: dict) -> SendResult:
        self.log.info("outbox message %s (channel %s, member %s, scenario %s) logged: "
                      "no TILLSTREAM_MESSAGE_WEBHOOK_URL configured",
                      record["id"], record["channel"], record["member"], record.get("scenario"))
        return SendResult(LOGGED)


def default_message_sender(settings: DeliverySettings, http: SignedHttp) -> Sender:
    if settings.message_webhook_url:
        return WebhookRelaySender(http, settings.message_webhook_url)
    return LogSender()


# ---------------------------------------------------------------------------------------------
# The delivery of one record, to its final outcome


def validate(record: Any) -> list[dict]:
    """Problems that make a record undeliverable, as DLQ details (empty: deliverable)."""
    if not isinstance(record, dict):
        return [{"field": "", "problem": "an outbox record is a JSON object"}]
    problems = []
    for name in ("id", "member"):
        if not isinstance(record.get(name), str) or not record.get(name):
            problems.append({"field": name, "problem": "required non-empty string"})
    channel = record.get("channel")
    if channel not in CHANNELS:
        problems.append({"field": "channel", "problem": f"one of {sorted(CHANNELS)}"})
    if channel == WEBHOOK:
        url = record.get("url")
        try:
            parts = urlsplit(url) if isinstance(url, str) else None
            host = parts.hostname if parts else None
        except ValueError:
            parts = host = None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            problems.append({"field": "url", "problem": "an absolute http(s) URL"})
        method = record.get("method") or "POST"
        if not isinstance(method, str) or method.upper() not in METHODS:
            problems.append({"field": "method", "problem": f"one of {sorted(METHODS)}"})
    return problems


@dataclass(slots=True)
class Outcome:
    """The final outcome of one outbox record."""

    record_id: str | None
    member: str | None
    channel: str              # a known channel or "unknown" (it is a metric label)
    status: str               # delivered | failed | logged
    outcome: str              # delivered | logged | rejected | exhausted | invalid
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    dead_lettered: bool = False
    status_recorded: bool = False

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED

    def details(self) -> list[dict]:
        """DLQ details of a failure (no URL, no body, no secret)."""
        return [{"field": "delivery", "problem": f"{self.outcome}: {self.error}",
                 "attempts": self.attempts, "http_status": self.http_status}]


def status_event(record_id: str, member: str, status: str, now: float,
                 brand: str = "default") -> dict:
    """The event that tells the member agent a message's final status (idempotent)."""
    return {"id": f"{record_id}:status", "type": "message.status", "member": member,
            "time": datetime.fromtimestamp(now, timezone.utc).isoformat(), "brand": brand,
            "data": {"message": record_id, "status": status}}


#: ``(reason, details, source)``: write a refused record to the DLQ, durably.
DeadLetterFn = Callable[[str, list[dict], Any], Awaitable[None]]
#: ``(member, event)``: send a status event to the member's key, durably.
StatusFn = Callable[[str, dict], Awaitable[None]]


async def _nothing(*_args: Any) -> None:
    return None


class OutboxDelivery:
    """Delivers outbox records, with no faust in sight: tests drive it directly.

    ``dead_letter`` and ``record_status`` are awaited before :meth:`deliver` returns, so the
    caller may ack the record once it does. ``source`` (the faust message, in the worker) is
    passed through to ``dead_letter`` untouched.
    """

    def __init__(self, settings: DeliverySettings | None = None, *,
                 session: aiohttp.ClientSession | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 message_sender: Sender | None = None,
                 dead_letter: DeadLetterFn | None = None,
                 record_status: StatusFn | None = None,
                 clock: Callable[[], float] = time.time,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings if settings is not None else DeliverySettings.from_env()
        self.http = SignedHttp(self.settings, session, sleep, wall_clock)
        self.webhooks: Sender = WebhookSender(self.http)
        self.messages: Sender = message_sender or default_message_sender(self.settings, self.http)
        self.dead_letter = dead_letter or _nothing
        self.record_status = record_status or _nothing
        self.clock = clock

    async def close(self) -> None:
        await self.http.close()

    async def process(self, raw: bytes | None, source: Any = None) -> Outcome:
        """Decode one outbox value and deliver it."""
        try:
            record = orjson.loads(raw or b"")
        except orjson.JSONDecodeError as exc:
            outcome = Outcome(None, None, "unknown", FAILED, INVALID, error="malformed_json")
            await self._finish(outcome, None, source,
                               [{"field": "", "problem": f"malformed JSON: {exc}"}])
            return outcome
        return await self.deliver(record, source)

    async def deliver(self, record: dict, source: Any = None) -> Outcome:
        problems = validate(record)
        if problems:
            ok = isinstance(record, dict)
            outcome = Outcome(
                _string(record.get("id")) if ok else None,
                _string(record.get("member")) if ok else None,
                _channel(record.get("channel")) if ok else "unknown",
                FAILED, INVALID, error="invalid record")
            await self._finish(outcome, record if ok else None, source, problems)
            return outcome
        channel = record["channel"]
        sender = self.webhooks if channel == WEBHOOK else self.messages
        try:
            result = await sender.send(record)
        except Exception as exc:  # a sender bug must not stop the agent or lose the record
            logger.error("outbox %s (channel %s): sender %s raised %s", record["id"], channel,
                         type(sender).__name__, type(exc).__name__, exc_info=True)
            result = SendResult(FAILED, error=type(exc).__name__, permanent=True)
        if result.status == FAILED:
            kind = REJECTED if result.permanent else EXHAUSTED
        else:
            kind = result.status
        outcome = Outcome(record["id"], record["member"], channel, result.status, kind,
                          result.attempts, result.http_status, result.error)
        await self._finish(outcome, record, source, outcome.details())
        return outcome

    async def _finish(self, outcome: Outcome, record: dict | None, source: Any,
                      details: list[dict]) -> None:
        if outcome.status == FAILED:
            reason = DLQ_INVALID_RECORD if outcome.outcome == INVALID else DLQ_DELIVERY_FAILED
            logger.warning("outbox %s (channel %s, member %s) failed: %s; dead-lettered (%s)",
                           outcome.record_id, outcome.channel, outcome.member,
                           outcome.error, reason)
            await self.dead_letter(reason, details, source)
            outcome.dead_lettered = True
        if outcome.record_id and outcome.member:
            brand = (record or {}).get("brand")
            await self.record_status(outcome.member, status_event(
                outcome.record_id, outcome.member, outcome.status, self.clock(),
                brand if isinstance(brand, str) and brand else "default"))
            outcome.status_recorded = True
        OUTBOX_DELIVERIES.labels(channel=outcome.channel, outcome=outcome.outcome).inc()


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _channel(value: Any) -> str:
    return value if value in CHANNELS else "unknown"


# ---------------------------------------------------------------------------------------------
# The faust agent


#: Outbox records in delivery at once per worker (faust's default stream buffer); past it the
#: fetcher waits, which slows the worker to what its receivers take.
OUTBOX_IN_FLIGHT = 4096


class OutboxBatches:
    """The outbox's batch handler (agents/batching.py): starts a delivery per record and
    returns; each record is acknowledged when its delivery has reached its final outcome. A
    slow receiver holds delivery slots (``concurrency`` HTTP deliveries at once), not the
    worker's fetcher: the member agent's events keep flowing while webhooks wait on the
    network. (On faust's per-record path, 16 actors each waited a loop turn for their status
    event per record; their queue filled and stopped every partition's fetch.)"""

    def __init__(self, app, delivery: OutboxDelivery, in_flight: int = OUTBOX_IN_FLIGHT) -> None:
        self.app = app
        self.delivery = delivery
        self._slots = asyncio.Semaphore(in_flight)
        self._in_flight: set[asyncio.Task] = set()

    async def handle(self, tp, messages: list) -> None:
        generation = self.app.consumer_generation_id
        for message in messages:
            await self._slots.acquire()
            task = asyncio.ensure_future(self._deliver(tp, message, generation))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _deliver(self, tp, message, generation: int) -> None:
        try:
            await self.delivery.process(message.value, message)
            self.app.consumer.acknowledge(tp, message.offset, generation)
        finally:
            self._slots.release()

    async def drain(self) -> None:
        """Wait for the deliveries in flight (at shutdown, and in tests)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)


def register(app, settings_like: Any = None, *, outbox_topic=None, events_topic=None,
             dead_letters=None, message_sender: Sender | None = None,
             clock: Any = None) -> OutboxBatches:
    """Deliver ``<app>-outbox`` on the batch path; returns the :class:`OutboxBatches` (its
    :class:`OutboxDelivery` is ``.delivery``).

    ``settings_like``: :class:`DeliverySettings`, or any object with some of its attribute names
    (the environment fills the rest). ``clock``: the worker's Clock (or a callable) for the time
    of status events; signatures always use wall time (receivers compare with their clock).
    """
    settings = DeliverySettings.coerce(settings_like)
    outbox = outbox_topic if outbox_topic is not None else app.topic(
        f"{app.conf.id}-outbox", key_serializer="raw", value_serializer="raw",
        retention=EVENT_RETENTION_SECONDS, deleting=True)
    events = events_topic if events_topic is not None else declare_events_topic(app)
    events_name = events.get_topic_name()
    dlq = dead_letters if dead_letters is not None else DeadLetters(app)

    async def dead_letter(reason: str, details: list[dict], message: Any) -> None:
        await (await dlq.send(reason, message, details))

    async def record_status(member: str, event: dict) -> None:
        await (await app.producer.send(events_name, member.encode(), orjson.dumps(event),
                                       None, None, None))

    now = clock.now if hasattr(clock, "now") else (clock or time.time)
    delivery = OutboxDelivery(settings, message_sender=message_sender, dead_letter=dead_letter,
                              record_status=record_status, clock=now)
    if not settings.webhook_secret:
        logger.warning("TILLSTREAM_WEBHOOK_SECRET is not set: webhooks are sent unsigned")
    batches = OutboxBatches(app, delivery)

    async def close_session(_sender: Any = None, **_kwargs: Any) -> None:
        await batches.drain()
        await delivery.close()

    app.on_before_shutdown.connect(close_session)
    batch_agent(app, outbox, "outbox-delivery", batches.handle, self_acking=True)
    return batches
