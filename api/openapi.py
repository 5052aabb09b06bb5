"""``GET /openapi.json``: the API described from the engine's own definitions.

Request bodies come from ``engine.events.event_json_schema`` and ``engine.program.json_schema``
— the declarations the validators run on — so the document cannot drift from what the API
accepts. Response shapes are declared here once, next to the paths.
"""

from __future__ import annotations

from typing import Any

import faust
from aiohttp import web
from faust.web import Request, View

from api.errors import json_response
from engine import program as engine_program
from engine.events import event_json_schema

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
NULLABLE_STRING = {"type": ["string", "null"]}

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "details"],
    "properties": {"code": STRING, "message": STRING, "details": {"type": "array", "items": {
        "type": "object", "properties": {"field": STRING, "problem": STRING}}}}}}}

MEMBER = {"type": "object",
          "required": ["id", "brand", "status", "balance", "pending", "tier", "tags",
                       "segments", "streak", "referral", "profile", "consents",
                       "last_activity"],
          "properties": {
              "id": STRING, "brand": STRING, "status": {"enum": ["active", "deleted"]},
              "balance": INTEGER, "pending": INTEGER, "tier": NULLABLE_STRING,
              "tags": {"type": "object", "additionalProperties": {"type": "array",
                                                                   "items": STRING}},
              "segments": {"type": "array", "items": STRING},
              "streak": {"type": "object", "properties": {"current": INTEGER,
                                                          "best": INTEGER}},
              "referral": {"type": "object", "properties": {
                  "referrer": NULLABLE_STRING, "referred": INTEGER, "qualified": INTEGER}},
              "profile": {"type": "object"}, "consents": {"type": "object"},
              "last_activity": NULLABLE_STRING}}

LEDGER_ENTRY = {"type": "object",
                "required": ["id", "time", "kind", "points", "balance", "event", "scenario"],
                "properties": {"id": STRING, "time": {}, "kind": STRING, "points": INTEGER,
                               "balance": INTEGER, "event": STRING,
                               "scenario": NULLABLE_STRING}}
MESSAGE = {"type": "object", "required": ["id", "time", "channel", "scenario", "status"],
           "properties": {"id": STRING, "channel": STRING, "subject": {}, "body": {},
                          "scenario": NULLABLE_STRING, "status": STRING}}
EXECUTION = {"type": "object", "required": ["id", "scenario", "member"],
             "properties": {"id": STRING, "scenario": STRING, "member": STRING,
                            "trigger": STRING, "actions": {"type": "array", "items": STRING}}}
#: In a scenario's history an execution also names the event that ran it: events partition,
#: offset, and its place among that event's executions (how replays are recognised).
SCENARIO_EXECUTION = dict(EXECUTION, properties={
    **EXECUTION["properties"],
    "source": {"type": "array", "items": INTEGER, "minItems": 3, "maxItems": 3}})


def with_id(schema: dict) -> dict:
    """A stored object as answered: the request schema plus its ``id`` (in every branch)."""
    stored = dict(schema, properties={**schema.get("properties", {}), "id": STRING})
    if "oneOf" in schema:
        stored["oneOf"] = [with_id(branch) for branch in schema["oneOf"]]
    return stored


def page(field: str, item: dict) -> dict:
    return {"type": "object", "required": [field, "total"],
            "properties": {field: {"type": "array", "items": item}, "total": INTEGER,
                           "offset": INTEGER, "limit": INTEGER}}


def _ok(schema: dict, status: str = "200") -> dict:
    return {status: {"description": "success",
                     "content": {"application/json": {"schema": schema}}}}


def _errors(*codes: int) -> dict:
    return {str(code): {"description": "error",
                        "content": {"application/json": {"schema": ERROR}}} for code in codes}


def _body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _path_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": STRING}


PAGING = [{"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                      "maximum": 500}}]
BRAND = [{"name": "brand", "in": "query", "schema": STRING}]

#: Collections served at /v1/<path> and /v1/<path>/{id}: (path, schema kind, list field).
COLLECTIONS = (("tiers", "tiers", "tiers"), ("segments", "segments", "segments"),
               ("triggers", "triggers", "triggers"), ("scenarios", "scenarios", "scenarios"),
               ("rewards", "rewards", "rewards"), ("promo-pools", "pools", "promo_pools"),
               ("goals", "goals", "goals"))


def build_document() -> dict[str, Any]:
    event = event_json_schema()
    paths: dict[str, Any] = {
        "/v1/events": {"post": {
            "summary": "Ingest one event or a batch of at most 1000 (all or nothing)",
            "requestBody": _body({"oneOf": [event, {
                "type": "object", "required": ["events"], "properties": {"events": {
                    "type": "array", "items": event, "minItems": 1, "maxItems": 1000}}}]}),
            "responses": {**_ok({"type": "object", "required": ["accepted"],
                                 "properties": {"accepted": INTEGER}}, "202"),
                          **_errors(400, 401, 403, 413)}}},
        "/v1/members/{member}": {"get": {
            "summary": "A member's state", "parameters": [_path_param("member")],
            "responses": {**_ok(MEMBER), **_errors(401, 403, 404)}}},
    }
    for name, field, item in (("ledger", "entries", LEDGER_ENTRY),
                              ("executions", "executions", EXECUTION),
                              ("messages", "messages", MESSAGE)):
        paths[f"/v1/members/{{member}}/{name}"] = {"get": {
            "summary": f"The member's {name}, newest first",
            "parameters": [_path_param("member"), *PAGING],
            "responses": {**_ok(page(field, item)), **_errors(400, 401, 403, 404)}}}
    for path, kind in (("program", "settings"), ("blacklist", "blacklist")):
        schema = engine_program.json_schema(kind)
        paths[f"/v1/{path}"] = {
            "get": {"summary": f"The {path} (per brand with ?brand=)", "parameters": BRAND,
                    "responses": {**_ok(schema), **_errors(401, 403)}},
            "put": {"summary": f"Replace the {path}", "parameters": BRAND,
                    "requestBody": _body(schema),
                    "responses": {**_ok(schema), **_errors(400, 401, 403)}}}
    for path, kind, list_field in COLLECTIONS:
        schema = engine_program.json_schema(kind)
        stored = with_id(schema)
        paths[f"/v1/{path}"] = {"get": {
            "summary": f"All {path}",
            "responses": {**_ok({"type": "object", "properties": {
                list_field: {"type": "array", "items": stored}}}), **_errors(401, 403)}}}
        item_ops = {
            "get": {"parameters": [_path_param("id")],
                    "responses": {**_ok(stored), **_errors(401, 403, 404)}},
            "put": {"parameters": [_path_param("id")], "requestBody": _body(schema),
                    "responses": {**_ok(stored), **_errors(400, 401, 403)}}}
        if path != "promo-pools":
            item_ops["delete"] = {"parameters": [_path_param("id")],
                                  "responses": {"204": {"description": "deleted"},
                                                **_errors(401, 403, 404, 409)}}
        paths[f"/v1/{path}/{{id}}"] = item_ops
    paths["/v1/scenarios/{scenario}/executions"] = {"get": {
        "summary": "A scenario's executions, newest first",
        "parameters": [_path_param("scenario"), *PAGING],
        "responses": {**_ok(page("executions", SCENARIO_EXECUTION)),
                      **_errors(400, 401, 403)}}}
    paths["/v1/triggers/{id}/fire"] = {"post": {
        "summary": "Fire an on-demand trigger for members, a tier or a segment",
        "parameters": [_path_param("id")],
        "requestBody": _body({"oneOf": [
            {"type": "object", "required": ["members"], "properties": {"members": {
                "type": "array", "items": STRING, "minItems": 1, "maxItems": 10_000}}},
            {"type": "object", "required": ["tier"], "properties": {"tier": STRING}},
            {"type": "object", "required": ["segment"], "properties": {"segment": STRING}}]}),
        "responses": {**_ok({"type": "object", "required": ["request", "targeted"]}, "202"),
                      **_errors(400, 401, 403, 404, 409)}}}
    paths["/v1/promo-pools/{id}/codes"] = {"post": {
        "summary": "Add codes to a running single-use pool",
        "parameters": [_path_param("id")],
        "requestBody": _body({"type": "object", "required": ["codes"], "properties": {
            "codes": {"type": "array", "items": STRING, "minItems": 1}}}),
        "responses": {**_ok({"type": "object", "properties": {"pool": STRING,
                                                              "added": INTEGER}}, "202"),
                      **_errors(400, 401, 403, 404)}}}
    paths["/v1/analytics/brands/{brand}"] = {"get": {
        "summary": "A brand's totals: members, active members, points, revenue",
        "parameters": [_path_param("brand")],
        "responses": {**_ok({"type": "object"}), **_errors(401, 403)}}}
    paths["/v1/analytics/brands/{brand}/{dimension}"] = {"get": {
        "summary": "Aggregates by tier, segment, store, till, till_hour or active",
        "parameters": [_path_param("brand"), _path_param("dimension"),
                       {"name": "date", "in": "query", "schema": STRING},
                       {"name": "days", "in": "query", "schema": INTEGER}],
        "responses": {**_ok({"type": "object"}), **_errors(400, 401, 403, 404)}}}
    paths["/healthz"] = {"get": {"responses": _ok({"type": "object"})}}
    paths["/readyz"] = {"get": {"responses": {**_ok({"type": "object"}),
                                              "503": {"description": "recovering"}}}}
    paths["/metrics"] = {"get": {"responses": {"200": {
        "description": "Prometheus text format",
        "content": {"text/plain": {"schema": STRING}}}}}}
    return {"openapi": "3.1.0",
            "info": {"title": "Tillstream", "version": "1",
                     "description": "Real-time loyalty and marketing automation (PRODUCT.md §3)"},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
            "paths": paths}


def register(app: faust.App, extra_paths: dict[str, Any] | None = None) -> None:
    document = build_document()
    document["paths"].update(extra_paths or {})

    @app.page("/openapi.json")
    class OpenApiView(View):
        async def get(self, request: Request) -> web.Response:
            return json_response(document)
