"""Webhook signatures: HMAC-SHA256 over the timestamp and the exact body bytes (Stripe-style).

Every HTTP delivery Tillstream makes carries

    X-Tillstream-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{body}")>

where ``body`` is the raw request body, byte for byte as sent (verify before parsing JSON: a
re-serialised body will not match). ``t`` is the time of that attempt, so every retry is signed
afresh. A header may carry several ``v1=`` entries (e.g. while a secret is being rotated); one
valid entry is enough. This module is pure (no I/O) so receivers can copy it verbatim.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Tillstream-Signature"
#: The outbox record id: the same for every attempt and every redelivery (dedupe key).
DELIVERY_HEADER = "X-Tillstream-Delivery"
#: Attempt number, 1-based (informational, not signed).
ATTEMPT_HEADER = "X-Tillstream-Attempt"

#: Default tolerance of :func:`verify` between the signed timestamp and the receiver's clock.
DEFAULT_TOLERANCE_SECONDS = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def compute(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body``."""
    return hmac.new(_key(secret), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Tillstream-Signature`` header value for ``body`` at ``timestamp`` (now)."""
    t = int(time.time() if timestamp is None else timestamp)
    return f"t={t},v1={compute(secret, t, body)}"


def parse(header: str) -> tuple[int, list[str]] | None:
    """``(timestamp, [v1 signatures])`` from a header value, or None if it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return None
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(secret: str | bytes, header: str | None, body: bytes,
           tolerance: float | None = DEFAULT_TOLERANCE_SECONDS,
           now: float | None = None) -> bool:
    """True when ``header`` is a valid signature of ``body`` with ``secret``, made within
    ``tolerance`` seconds of ``now`` (None: no age check). Constant-time comparison."""
    if not header or not secret:
        return False
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            return False
    expected = compute(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
