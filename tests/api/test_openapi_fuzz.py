"""Schemathesis against ``/openapi.json``: generated requests for every operation; no 5xx,
every response matches its declared schema, status code and content type, and undeclared
methods answer 405 with ``Allow``.

Not checked: that every schema-valid request is accepted. Some rules cross fields or objects
(a scenario's window must end after it starts; a trigger id must exist), which JSON Schema
cannot say; such a request gets a 400 naming the problem, by design."""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from schemathesis import checks
from hypothesis import HealthCheck, settings

from tests.support import WorkerProcess

pytestmark = pytest.mark.slow

ADMIN = "fuzz-adm1n"


@pytest.fixture(scope="module")
def fuzzed_worker(tmp_path_factory):
    worker = WorkerProcess(tmp_path_factory.mktemp("fuzz") / "w1",
                           app_id=f"fuzz-{uuid.uuid4().hex[:8]}",
                           extra_env={"TILLSTREAM_TOKENS": f"admin:{ADMIN}"}).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_worker):
    return schemathesis.openapi.from_url(fuzzed_worker.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_within_its_contract(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"}, checks=[
        checks.not_a_server_error, checks.status_code_conformance,
        checks.content_type_conformance, checks.response_schema_conformance,
        checks.unsupported_method])
