"""Bearer-token auth with three roles: admin (everything), query (reads), ingest (events).

Tokens come from ``TILLSTREAM_TOKENS`` (``role:token,role:token``) and are compared in constant
time. With no tokens the API is open, which is only allowed on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

logger = logging.getLogger(__name__)

ROLES = ("admin", "query", "ingest")
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


class AuthConfigError(ValueError):
    """The token configuration is unusable; the worker must not start."""


def parse_tokens(spec: str) -> list[tuple[str, bytes]]:
    tokens = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        role, sep, token = item.partition(":")
        if not sep or role not in ROLES or not token:
            raise AuthConfigError(
                f"TILLSTREAM_TOKENS entries must look like role:token with role one of "
                f"{', '.join(ROLES)}; got an entry for role {role!r}")
        tokens.append((role, token.encode()))
    return tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_open_api_allowed(tokens: list, web_host: str) -> None:
    """Refuse an unauthenticated API on a non-loopback address."""
    if tokens:
        return
    if not is_loopback(web_host):
        raise AuthConfigError(
            f"refusing to serve the API on {web_host} without tokens: set TILLSTREAM_TOKENS "
            f"(e.g. admin:<secret>,query:<secret>,ingest:<secret>) or bind to 127.0.0.1")
    logger.warning("TILLSTREAM_TOKENS is not set: the API is open (loopback only)")


def required_roles(method: str, path: str) -> frozenset[str] | None:
    """Roles allowed for a request; None means no token is needed."""
    if path in PUBLIC_PATHS:
        return None
    if method == "POST" and path == "/v1/events":
        return frozenset({"admin", "ingest"})
    if method in ("GET", "HEAD"):
        return frozenset({"admin", "query"})
    return frozenset({"admin"})


def role_for(header: str | None, tokens: list[tuple[str, bytes]]) -> str | None:
    """The role of the bearer token in ``header``; every token is compared (constant time)."""
    if not header or not header.startswith("Bearer "):
        return None
    presented = header[len("Bearer "):].strip().encode()
    found = None
    for role, token in tokens:
        if hmac.compare_digest(presented, token) and found is None:
            found = role
    return found
