"""The JSON API's bodies (GET /api/v1/...) and its OpenAPI 3 description (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from astreinte_ari.schedule.changes import ChangeRequest
from astreinte_ari.web.planning import LineNow, RotaNow

API_PREFIX = "/api/v1"
ACTIONS = ("approve", "refuse", "consent", "cancel")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def oncall_json(lines: list[LineNow], rotas: list[RotaNow]) -> dict[str, Any]:
    return {
        "lines": [
            {"did": line.did, "name": line.name, "team": line.team, "period": line.period,
             "hops": [{"label": h.label, "people": list(h.people), "timeout_s": h.timeout_s}
                      for h in line.hops],
             "final": line.final}
            for line in lines
        ],
        "rotas": [
            {"team": r.team, "rota": r.rota, "person": r.person_id, "name": r.person_name,
             "until": _iso(r.until)}
            for r in rotas
        ],
    }  # fmt: skip


def change_json(r: ChangeRequest) -> dict[str, Any]:
    return {
        "id": r.id, "team": r.team, "rota": r.rota, "kind": r.kind, "requester": r.requester,
        "counterpart": r.counterpart, "start": _iso(r.start), "end": _iso(r.end),
        "swap_start": _iso(r.swap_start), "swap_end": _iso(r.swap_end), "reason": r.reason,
        "status": r.status, "requested_at": _iso(r.requested_at),
        "consented_at": _iso(r.consented_at), "decided_by": r.decided_by,
        "decided_at": _iso(r.decided_at), "decision_note": r.decision_note,
    }  # fmt: skip


def feed_json(f: Any) -> dict[str, Any]:
    """A calendar feed (web/ports.py: Feed) as listed: never its token nor its URL."""
    return {"id": f.id, "scope": f.scope, "team": f.team, "person": f.person,
            "created_at": _iso(f.created_at), "created_by": f.created_by}  # fmt: skip


def refusal_status(rule: str) -> int:
    """The HTTP status of a ChangeRefused: who may not (403), what is not (404), what
    is no longer pending (409), bad input (422), a rule of the schedule or labour law (409)."""
    return {"permission": 403, "not_found": 404, "invalid": 422}.get(rule, 409)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], what: str) -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "401": _json(_ref("Error"), "not signed in (no or expired session)"),
    "403": _json(_ref("Error"), "CSRF token or Origin refused, or not allowed"),
}
_STR = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}
_NSTR = {"type": ["string", "null"]}
_KIND = {"enum": ["swap", "cover"]}


def openapi(public_url: str, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 of /api/v1 (docs/web.md explains sign-in and the CSRF header)."""
    change_op = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR}],
        "requestBody": {"required": False, "content": {"application/json": {
            "schema": {"type": "object", "properties": {"note": _STR}}}}},
        "responses": {"200": _json(_ref("Change"), "the request after the step"),
                      "409": _json(_ref("Error"), "refused: `error` names the rule"),
                      "404": _json(_ref("Error"), "no such request (or not visible)"),
                      **_ERRORS},
    }  # fmt: skip
    paths: dict[str, Any] = {
        f"{API_PREFIX}/oncall": {"get": {
            "summary": "Who is on call now: each visible line's cascade, each rota's holder",
            "responses": {"200": _json(_ref("OnCall"), "now"), **_ERRORS}}},
        f"{API_PREFIX}/teams/{{team}}/shifts": {"get": {
            "summary": "A team's shifts over [from, to) (at most 400 days)",
            "parameters": [
                {"name": "team", "in": "path", "required": True, "schema": _STR},
                {"name": "from", "in": "query", "required": True, "schema": _TIME},
                {"name": "to", "in": "query", "required": True, "schema": _TIME}],
            "responses": {"200": _json({"type": "array", "items": _ref("Shift")}, "shifts"),
                          "404": _json(_ref("Error"), "unknown or not visible team"),
                          **_ERRORS}}},
        f"{API_PREFIX}/changes": {
            "get": {"summary": "Change requests of the teams the caller sees",
                    "parameters": [{"name": "team", "in": "query", "schema": _STR},
                                   {"name": "status", "in": "query", "schema": {
                                       "enum": ["requested", "approved", "refused",
                                                "cancelled"]}}],
                    "responses": {"200": _json({"type": "array", "items": _ref("Change")},
                                               "requests"), **_ERRORS}},
            "post": {"summary": "Ask for a swap or a cover (as the signed-in person)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": _ref("NewChange")}}},
                     "responses": {"201": _json(_ref("Change"), "created"),
                                   "409": _json(_ref("Error"), "refused: `error` names the rule"),
                                   "422": _json(_ref("Error"), "invalid input"), **_ERRORS}}},
    }  # fmt: skip
    paths[f"{API_PREFIX}/feeds"] = {
        "get": {
            "summary": "Calendar feeds the caller may revoke: their own, and their "
            "managed teams' (admins: every person's); never a URL",
            "responses": {
                "200": _json({"type": "array", "items": _ref("Feed")}, "feeds"),
                **_ERRORS,
            },
        },
        "post": {
            "summary": "Create a calendar (ICS) URL: `person` (the caller's shifts in "
            "`team`) or `team` (managers); the URL is in this answer only",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewFeed")}},
            },
            "responses": {
                "201": _json(_ref("NewFeedUrl"), "created"),
                "404": _json(_ref("Error"), "no such team for the caller"),
                "409": _json(_ref("Error"), "`alerting:` is not configured"),
                "422": _json(_ref("Error"), "invalid input"),
                **_ERRORS,
            },
        },
    }
    paths[f"{API_PREFIX}/feeds/{{id}}/revoke"] = {
        "post": {
            "summary": "Revoke a calendar feed: its URL answers 404 from then on",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR}],
            "responses": {
                "200": _json(_ref("Feed"), "revoked"),
                "404": _json(_ref("Error"), "no such active feed the caller may revoke"),
                **_ERRORS,
            },
        }
    }
    for action in ACTIONS:
        paths[f"{API_PREFIX}/changes/{{id}}/{action}"] = {
            "post": {"summary": f"{action.capitalize()} a pending request", **change_op}
        }
    schemas = {
        "Error": {"type": "object", "required": ["error", "message"],
                  "properties": {"error": _STR, "message": _STR}},
        "OnCall": {"type": "object", "properties": {
            "lines": {"type": "array", "items": {"type": "object", "properties": {
                "did": _STR, "name": _STR, "team": _STR, "period": _STR, "final": _STR,
                "hops": {"type": "array", "items": {"type": "object", "properties": {
                    "label": _STR, "people": {"type": "array", "items": _STR},
                    "timeout_s": {"type": "integer"}}}}}}},
            "rotas": {"type": "array", "items": {"type": "object", "properties": {
                "team": _STR, "rota": _STR, "person": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]}, "until": _NTIME}}}}},
        "Shift": {"type": "object", "properties": {
            "rota": _STR, "person": _STR, "name": _STR, "start": _TIME, "end": _TIME,
            "source": {"enum": ["rotation", "swap", "override", "holiday", "closure"]},
            "reason": {"type": ["string", "null"]}, "requested_by": {"type": ["string", "null"]}}},
        "NewChange": {"type": "object", "required": ["team", "rota", "kind", "start", "end"],
                      "properties": {"team": _STR, "rota": _STR, "kind": _KIND,
                                     "start": _TIME, "end": _TIME, "counterpart": _STR,
                                     "swap_start": _TIME, "swap_end": _TIME, "reason": _STR}},
        "NewFeed": {"type": "object", "required": ["team"], "properties": {
            "team": _STR, "scope": {"enum": ["person", "team"], "default": "person"}}},
        "Feed": {"type": "object", "properties": {
            "id": _STR, "scope": {"enum": ["person", "team"]}, "team": _STR, "person": _NSTR,
            "created_at": _TIME, "created_by": _STR}},
        "NewFeedUrl": {"allOf": [_ref("Feed"), {"type": "object", "properties": {
            "url": {"type": "string", "format": "uri"}}}]},
        "Change": {"type": "object", "properties": {
            "id": _STR, "team": _STR, "rota": _STR, "kind": {"enum": ["swap", "cover"]},
            "requester": _STR, "counterpart": _STR, "start": _TIME, "end": _TIME,
            "swap_start": _NTIME, "swap_end": _NTIME, "reason": _STR,
            "status": {"enum": ["requested", "approved", "refused", "cancelled"]},
            "requested_at": _TIME, "consented_at": _NTIME, "decided_by": _NSTR,
            "decided_at": _NTIME, "decision_note": _STR}},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "astreinte-ari planning API", "version": version,
                 "description": "An API token (Authorization: Bearer), or the session cookie "
                 "of the web sign-in whose POSTs carry the X-CSRF-Token header (docs/web.md)."},
        "servers": [{"url": public_url}],
        "components": {"schemas": schemas, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "astreinte_session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            "token": {"type": "http", "scheme": "bearer",
                      "description": "`astreinte web api-token PERSON`: acts as that person"}}},
        "security": [{"token": []}, {"session": [], "csrf": []}],
        "paths": paths,
    }  # fmt: skip
