"""The public API (PRODUCT.md §3) against one worker with tokens: every path, its happy path,
its error codes and its roles."""

from __future__ import annotations

import time
import uuid

import pytest

from prometheus_client.parser import text_string_to_metric_families
from tests.support import LoyaltyClient, WorkerProcess, wait_until

pytestmark = pytest.mark.slow

ADMIN, QUERY, INGEST = "adm1n-secret", "qu3ry-secret", "1ngest-secret"
TOKENS = f"admin:{ADMIN},query:{QUERY},ingest:{INGEST}"


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    worker = WorkerProcess(tmp_path_factory.mktemp("api") / "w1",
                           app_id=f"api-{uuid.uuid4().hex[:8]}",
                           extra_env={"TILLSTREAM_TOKENS": TOKENS}).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="module")
def admin(worker):
    return LoyaltyClient(worker, token=ADMIN)


def purchase(event_id: str, member: str, amount: float, till: str = "T1") -> dict:
    return {"id": event_id, "type": "purchase", "member": member,
            "data": {"transaction": f"t-{event_id}", "amount": amount, "currency": "PLN",
                     "store": "S1", "till": till}}


# -- ingestion -------------------------------------------------------------------------------

def test_events_are_accepted_one_or_many_and_need_the_ingest_or_admin_role(worker, admin):
    event = {"id": "j-1", "type": "member.joined", "member": "API-1",
             "data": {"profile": {"first_name": "Ada"}, "channel": "web"}}
    assert worker.post("/v1/events", event)[0] == 401
    assert worker.post("/v1/events", event, token=QUERY)[0] == 403
    status, body = worker.post("/v1/events", event, token=INGEST)
    assert (status, body) == (202, {"accepted": 1})
    status, body = worker.post("/v1/events", {"events": [purchase("p-1", "API-1", 10.0),
                                                         purchase("p-2", "API-1", 5.0)]},
                               token=ADMIN)
    assert (status, body) == (202, {"accepted": 2})
    member = admin.wait_member("API-1", lambda m: m["balance"] == 15)
    assert member["profile"] == {"first_name": "Ada"}


def test_an_invalid_batch_is_refused_whole_and_every_bad_field_is_listed(worker, admin):
    bad = {"events": [purchase("ok-1", "API-2", 10.0),
                      {"id": "b-1", "type": "purchase", "member": "API-2",
                       "data": {"transaction": "t", "amount": "ten", "currency": "PLN",
                                "store": "S1", "till": "T1"}},
                      {"id": "b-2", "type": "teleport", "member": "API-2", "data": {}}]}
    status, body = worker.post("/v1/events", bad, token=INGEST)
    assert status == 400
    fields = [d["field"] for d in body["error"]["details"]]
    assert "events[1].data.amount" in fields
    assert "events[2].type" in fields
    assert not any(f.startswith("events[0]") for f in fields)
    time.sleep(0.5)
    assert worker.get("/v1/members/API-2", token=QUERY)[0] == 404


def test_batch_size_body_size_and_malformed_json_limits(worker):
    too_many = {"events": [purchase(f"x-{i}", "API-3", 1.0) for i in range(1001)]}
    status, body = worker.post("/v1/events", too_many, token=INGEST)
    assert status == 400 and body["error"]["details"][0]["field"] == "events"
    from tests.support import http
    status, body = http("POST", worker.url + "/v1/events", token=INGEST,
                        raw=b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}")
    assert status == 413 and body["error"]["code"] == "too_large"
    status, body = http("POST", worker.url + "/v1/events", token=INGEST, raw=b"{nope")
    assert status == 400 and body["error"]["code"] == "invalid_json"


# -- members ---------------------------------------------------------------------------------

def test_member_ledger_executions_and_messages_are_paged_newest_first(worker, admin):
    admin.send({"id": "j-4", "type": "member.joined", "member": "API-4",
                "data": {"profile": {}, "channel": "web"}})
    admin.send_many([purchase(f"p4-{i}", "API-4", float(i + 1)) for i in range(5)])
    admin.wait_member("API-4", lambda m: m["balance"] == 15)
    status, body = worker.get("/v1/members/API-4/ledger?limit=2&offset=1", token=QUERY)
    assert status == 200
    assert body["total"] == 5
    assert [e["points"] for e in body["entries"]] == [4, 3]
    assert set(body["entries"][0]) >= {"id", "time", "kind", "points", "balance", "event",
                                       "scenario"}
    for path in ("executions", "messages"):
        status, body = worker.get(f"/v1/members/API-4/{path}", token=QUERY)
        assert status == 200 and body[path] == []
    status, body = worker.get("/v1/members/API-4/ledger?offset=31870678324535449532497920",
                              token=QUERY)
    assert status == 400 and body["error"]["details"][0]["field"] == "offset"
    status, body = worker.get("/v1/members/API-4/ledger?limit=-1&offset=x", token=QUERY)
    assert status == 400 and {d["field"] for d in body["error"]["details"]} == {"limit",
                                                                                "offset"}


def test_unknown_member_is_404_and_reads_need_the_query_or_admin_role(worker):
    assert worker.get("/v1/members/NOBODY", token=QUERY)[0] == 404
    assert worker.get("/v1/members/NOBODY/ledger", token=ADMIN)[0] == 404
    assert worker.get("/v1/members/NOBODY", token=INGEST)[0] == 403
    assert worker.get("/v1/members/NOBODY")[0] == 401


# -- admin -----------------------------------------------------------------------------------

def test_program_settings_are_validated_and_overridable_per_brand(worker):
    status, body = worker.put("/v1/program", {"points_per_unit": -1, "rounding": "up"},
                              token=ADMIN)
    assert status == 400
    assert {d["field"] for d in body["error"]["details"]} >= {"points_per_unit", "rounding"}
    assert worker.put("/v1/program", {"points_per_unit": 1.0}, token=QUERY)[0] == 403
    status, body = worker.put("/v1/program?brand=outlet", {"points_per_unit": 3.0}, token=ADMIN)
    assert status == 200
    status, body = worker.get("/v1/program?brand=outlet", token=QUERY)
    assert status == 200 and body["points_per_unit"] == 3.0


def test_collections_put_get_list_delete_and_conflicts(worker):
    tier = {"name": "Gold", "rank": 2, "metric": "spend_365d", "min": 1000,
            "points_per_unit": 2.0, "discount": 5}
    assert worker.put("/v1/tiers/gold", tier, token=ADMIN)[0] == 200
    status, body = worker.get("/v1/tiers/gold", token=QUERY)
    assert status == 200 and body["name"] == "Gold" and body["id"] == "gold"
    assert "gold" in [t["id"] for t in worker.get("/v1/tiers", token=QUERY)[1]["tiers"]]
    scenario = {"name": "Gold welcome", "active": True, "trigger": "member.joined",
                "tiers": ["gold"], "actions": [{"type": "points.add", "points": 5}]}
    assert worker.put("/v1/scenarios/gold-welcome", scenario, token=ADMIN)[0] == 200
    status, body = worker.delete("/v1/tiers/gold", token=ADMIN)
    assert status == 409 and body["error"]["code"] == "in_use"
    status, body = worker.put("/v1/scenarios/broken",
                              {"name": "x", "active": True, "trigger": "no-such-trigger",
                               "tiers": ["platinum"], "actions": [{"type": "teleport"}]},
                              token=ADMIN)
    assert status == 400
    fields = {d["field"] for d in body["error"]["details"]}
    assert {"trigger", "tiers[0]"} <= fields and any(f.startswith("actions[0]") for f in fields)
    assert worker.delete("/v1/scenarios/gold-welcome", token=ADMIN)[0] == 204
    assert worker.delete("/v1/tiers/gold", token=ADMIN)[0] == 204
    assert worker.get("/v1/tiers/gold", token=QUERY)[0] == 404
    assert worker.delete("/v1/tiers/gold", token=ADMIN)[0] == 404


def test_segment_rules_are_data_and_bad_rules_name_the_bad_path(worker):
    status, body = worker.put("/v1/segments/bad",
                              {"name": "Bad", "rule": {"all": [
                                  {"field": "balance", "op": ">=", "value": 1},
                                  {"field": "__import__('os')", "op": "~", "value": 1}]}},
                              token=ADMIN)
    assert status == 400
    fields = {d["field"] for d in body["error"]["details"]}
    assert any("all[1]" in f for f in fields)


def test_blacklist_refuses_a_join_with_a_listed_email(worker, admin):
    assert worker.put("/v1/blacklist", {"phones": [], "emails": ["spam@example.com"]},
                      token=ADMIN)[0] == 200
    assert worker.get("/v1/blacklist", token=QUERY)[1]["emails"] == ["spam@example.com"]
    admin.send({"id": "j-bl", "type": "member.joined", "member": "API-BL",
                "data": {"profile": {"email": "spam@example.com"}, "channel": "web"}})
    admin.send({"id": "j-ok", "type": "member.joined", "member": "API-OK",
                "data": {"profile": {"email": "ok@example.com"}, "channel": "web"}})
    admin.wait_member("API-OK", lambda m: True)
    assert worker.get("/v1/members/API-BL", token=QUERY)[0] == 404


def test_triggers_list_system_ones_and_fire_on_demand_for_members(worker, admin):
    status, body = worker.put("/v1/triggers/flash", {"type": "on_demand"}, token=ADMIN)
    assert status == 200
    assert worker.put("/v1/scenarios/flash-bonus",
                      {"name": "Flash bonus", "active": True, "trigger": "flash",
                       "actions": [{"type": "points.add", "points": 7}]},
                      token=ADMIN)[0] == 200
    admin.send({"id": "j-f", "type": "member.joined", "member": "API-F",
                "data": {"profile": {}, "channel": "web"}})
    admin.wait_member("API-F", lambda m: True)
    status, body = worker.post("/v1/triggers/flash/fire", {"members": ["API-F"]}, token=ADMIN)
    assert status == 202 and body["targeted"] == 1
    admin.wait_member("API-F", lambda m: m["balance"] == 7)
    wait_until(lambda: worker.get("/v1/scenarios/flash-bonus/executions",
                                  token=QUERY)[1]["total"] == 1, 20, message="history")
    [execution] = worker.get("/v1/scenarios/flash-bonus/executions", token=QUERY)[1]["executions"]
    assert execution["member"] == "API-F" and len(execution["source"]) == 3
    assert worker.post("/v1/triggers/flash/fire", {"members": []}, token=ADMIN)[0] == 400
    assert worker.post("/v1/triggers/nope/fire", {"members": ["x"]}, token=ADMIN)[0] == 404
    assert worker.post("/v1/triggers/flash/fire", {"members": ["x"]}, token=QUERY)[0] == 403
    status, body = worker.delete("/v1/triggers/flash", token=ADMIN)
    assert status == 409


def test_firing_for_a_tier_fans_out_to_every_member_of_the_tier(worker, admin):
    tier = {"name": "Fans", "rank": 1, "metric": "spend_total", "min": 50}
    assert worker.put("/v1/tiers/fans", tier, token=ADMIN)[0] == 200
    assert worker.put("/v1/triggers/fans-day", {"type": "on_demand"}, token=ADMIN)[0] == 200
    assert worker.put("/v1/scenarios/fans-day",
                      {"name": "Fans day", "active": True, "trigger": "fans-day",
                       "actions": [{"type": "points.add", "points": 1000}]},
                      token=ADMIN)[0] == 200
    fans = [f"FAN-{i}" for i in range(6)]
    for member in fans + ["NOT-A-FAN"]:
        admin.send({"id": f"j-{member}", "type": "member.joined", "member": member,
                    "data": {"profile": {}, "channel": "web"}})
    admin.send_many([purchase(f"pf-{m}", m, 60.0) for m in fans])
    for member in fans:
        admin.wait_member(member, lambda m: m["tier"] == "fans")
    wait_until(lambda: worker.get("/v1/analytics/brands/default/tier", token=QUERY)[1]
               ["values"].get("fans", {}).get("members") == 6, 20, message="tier counted")
    status, body = worker.post("/v1/triggers/fans-day/fire", {"tier": "fans"}, token=ADMIN)
    assert status == 202 and body["targeted"] == 6 and body["partitions"] == 4
    for member in fans:
        admin.wait_member(member, lambda m: m["balance"] >= 1000)
    assert admin.member("NOT-A-FAN")["balance"] == 0


def test_promo_pool_codes_are_added_to_a_single_use_pool(worker):
    pool = {"name": "Summer", "kind": "single_use"}
    assert worker.put("/v1/promo-pools/summer", pool, token=ADMIN)[0] == 200
    status, body = worker.post("/v1/promo-pools/summer/codes", {"codes": ["A1", "A2"]},
                               token=ADMIN)
    assert (status, body["added"]) == (202, 2)
    status, body = worker.post("/v1/promo-pools/summer/codes", {"codes": ["", 3]},
                               token=ADMIN)
    assert status == 400 and len(body["error"]["details"]) == 2
    assert worker.post("/v1/promo-pools/none/codes", {"codes": ["x"]}, token=ADMIN)[0] == 404


# -- analytics, metrics, openapi --------------------------------------------------------------

def test_analytics_per_brand_and_till_hour(worker, admin):
    admin.send({"id": "j-an", "type": "member.joined", "member": "API-AN",
                "data": {"profile": {}, "channel": "web"}})
    admin.send({**purchase("p-an", "API-AN", 40.0, till="T-AN"),
                "time": "2026-06-02T10:15:00Z"})
    admin.wait_member("API-AN", lambda m: m["balance"] == 40)

    def till_load():
        status, body = worker.get("/v1/analytics/brands/default/till_hour?date=2026-06-02",
                                  token=QUERY)
        return body if status == 200 and body["tills"].get("T-AN") else None
    assert wait_until(till_load, 20, message="till load")["tills"]["T-AN"] == {"10": 1}
    status, body = worker.get("/v1/analytics/brands/default", token=QUERY)
    assert status == 200 and body["members"] >= 1 and body["revenue"] >= 40.0
    assert worker.get("/v1/analytics/brands/default/nonsense", token=QUERY)[0] == 404


def test_metrics_count_events_by_type_and_outcome(worker, admin):
    def sample(name: str, **labels) -> float:
        text = worker.get("/metrics")[1]["raw"]
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0
    before = sample("tillstream_events_total", type="visit", outcome="applied")
    admin.send({"id": "j-mx", "type": "member.joined", "member": "API-MX",
                "data": {"profile": {}, "channel": "web"}})
    admin.send_many([{"id": f"v-mx-{i}", "type": "visit", "member": "API-MX",
                      "data": {"store": "S1"}} for i in range(3)])
    wait_until(lambda: sample("tillstream_events_total", type="visit",
                              outcome="applied") == before + 3, 20, message="visit metric")
    assert sample("tillstream_http_requests_total", route="/v1/events", method="POST",
                  status="202") >= 2
    text = worker.get("/metrics")[1]["raw"]
    assert "API-MX" not in text


def test_openapi_describes_every_route_and_needs_no_token(worker):
    status, document = worker.get("/openapi.json")
    assert status == 200
    paths = document["paths"]
    for path in ("/v1/events", "/v1/members/{member}", "/v1/members/{member}/ledger",
                 "/v1/program", "/v1/tiers/{id}", "/v1/segments/{id}", "/v1/triggers/{id}",
                 "/v1/scenarios/{id}", "/v1/rewards/{id}", "/v1/promo-pools/{id}",
                 "/v1/blacklist", "/v1/triggers/{id}/fire", "/v1/promo-pools/{id}/codes",
                 "/v1/scenarios/{scenario}/executions", "/v1/analytics/brands/{brand}"):
        assert path in paths, path
    event_schema = paths["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert "purchase" in str(event_schema)
