"""Auth: 401 without a valid token, 403 for the wrong role, open only on loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from api.auth import AuthConfigError, parse_tokens, required_roles, role_for
from tests.support import REPO

#: These tests prove the plumbing with the minimal counter agent (agents/counter.py).
MINIMAL = {"TILLSTREAM_PIPELINE": "minimal"}

TOKENS = "admin:adm1n-secret,query:qu3ry-secret,ingest:1ngest-secret"


def test_roles_by_method_and_path():
    assert required_roles("GET", "/healthz") is None
    assert required_roles("GET", "/metrics") is None
    assert required_roles("POST", "/v1/events") == {"admin", "ingest"}
    assert required_roles("GET", "/v1/members/M-1") == {"admin", "query"}
    assert required_roles("PUT", "/v1/tiers/gold") == {"admin"}
    assert required_roles("POST", "/v1/triggers/t/fire") == {"admin"}


def test_bearer_tokens_map_to_roles():
    tokens = parse_tokens(TOKENS)
    assert role_for("Bearer qu3ry-secret", tokens) == "query"
    assert role_for("Bearer adm1n-secret", tokens) == "admin"
    assert role_for("Bearer qu3ry-secre", tokens) is None
    assert role_for("qu3ry-secret", tokens) is None
    assert role_for(None, tokens) is None


def test_malformed_token_config_is_refused_without_echoing_the_secret():
    with pytest.raises(AuthConfigError) as error:
        parse_tokens("root:s3cret-value")
    assert "s3cret-value" not in str(error.value)


def test_worker_refuses_to_start_open_on_a_public_address(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "worker", "--web-host", "0.0.0.0",
         "--data-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "TILLSTREAM_TOKENS": ""})
    assert result.returncode != 0
    assert "without tokens" in result.stderr


@pytest.mark.slow
def test_each_role_gets_exactly_its_routes(worker_factory):
    worker = worker_factory("embedded", env={**MINIMAL, "TILLSTREAM_TOKENS": TOKENS}).start()
    event = {"member": "M-1", "data": {"amount": 3}}
    assert worker.get("/healthz")[0] == 200
    assert worker.get("/metrics")[0] == 200
    status, body = worker.get("/v1/counters/M-1")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert worker.get("/v1/counters/M-1", token="wrong")[0] == 401
    status, body = worker.get("/v1/counters/M-1", token="1ngest-secret")
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert worker.post("/v1/counters", event, token="qu3ry-secret")[0] == 403
    assert worker.post("/v1/counters", event, token="adm1n-secret")[0] == 202
    assert worker.get("/v1/counters/M-404", token="qu3ry-secret")[0] == 404
