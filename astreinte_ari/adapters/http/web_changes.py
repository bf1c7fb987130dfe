"""Self-service changes on the web: the HTML pages and the JSON API (/api/v1).

Each handler checks the session and the viewer's rights first (a team not
visible is a 404 as if it did not exist); the changes service then applies the
rules (consent, managers, labour law) with the signed-in person as the actor.
Every POST passed the Origin check (web_server.py) and carries the session's
CSRF token: the form field, or the X-CSRF-Token header for the API.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from aiohttp import web

from astreinte_ari import __version__
from astreinte_ari.adapters.http.web_server import WebServer, json_error
from astreinte_ari.schedule.changes import ChangeRefused, ChangeRequest
from astreinte_ari.schedule.rota import shifts
from astreinte_ari.web import api
from astreinte_ari.web.changes_pages import Slot, form_page, list_page
from astreinte_ari.web.i18n import word
from astreinte_ari.web.planning import on_call_now
from astreinte_ari.web.ports import ChangesPort
from astreinte_ari.web.signin import Session

MAX_SPAN = timedelta(days=400)  # of a shifts query


def _when(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


_error = json_error


class ChangeHandlers:
    def __init__(self, server: WebServer, changes: ChangesPort) -> None:
        self.server = server
        self.changes = changes
        server.changes = changes
        server.extra_routes.append(self.add_routes)

    def add_routes(self, app: web.Application, prefix: str) -> None:
        p, a = prefix, prefix + api.API_PREFIX
        app.add_routes(
            [
                web.get(f"{p}/changes", self.list_page),
                web.get(f"{p}/changes/new", self.form),
                web.post(f"{p}/changes", self.create),
                web.post(f"{p}/changes/{{id}}/{{action}}", self.act),
                web.get(f"{a}/openapi.json", self.openapi),
                web.get(f"{a}/oncall", self.api_oncall),
                web.get(f"{a}/teams/{{team}}/shifts", self.api_shifts),
                web.get(f"{a}/changes", self.api_changes),
                web.post(f"{a}/changes", self.api_create),
                web.post(f"{a}/changes/{{id}}/{{action}}", self.api_act),
            ]
        )

    # -- shared -----------------------------------------------------------------------

    def _visible(self, session: Session) -> list[str]:
        return session.viewer.visible_teams(self.server.config())

    async def _requests(
        self, session: Session, team: str | None = None, status: str | None = None
    ) -> list[ChangeRequest]:
        teams = [t for t in self._visible(session) if team is None or t == team]
        found: list[ChangeRequest] = []
        for name in teams:
            found += await asyncio.to_thread(self.changes.list, team=name, status=status)
        found.sort(key=lambda r: r.requested_at, reverse=True)
        return found

    async def _run(
        self, session: Session, request_id: str, action: str, note: str
    ) -> ChangeRequest:
        """One step on a request the viewer may see; ChangeRefused otherwise."""
        if action not in api.ACTIONS:
            raise ChangeRefused("not_found", f"no action {action!r}")
        known = {r.id: r for r in await self._requests(session)}
        found = known.get(request_id)
        if found is None:
            raise ChangeRefused("not_found", f"no change request {request_id!r}")
        me, manages = session.viewer.person_id, session.viewer.manages(found.team)
        calls = {
            "consent": lambda: self.changes.consent(request_id, actor=me),
            "cancel": lambda: self.changes.cancel(request_id, actor=me),
            "approve": lambda: self.changes.approve(
                request_id, actor=me, as_manager=manages, note=note
            ),
            "refuse": lambda: self.changes.refuse(
                request_id, actor=me, as_manager=manages, note=note
            ),
        }
        return await asyncio.to_thread(calls[action])

    async def _create(self, session: Session, fields: dict[str, Any]) -> ChangeRequest:
        team = fields.get("team")
        if not isinstance(team, str) or team not in self._visible(session):
            raise ChangeRefused("not_found", "unknown team")
        start, end = _when(fields.get("start")), _when(fields.get("end"))
        if start is None or end is None:
            raise ChangeRefused("invalid", "start and end are ISO 8601 times with a zone")
        counterpart = fields.get("counterpart") or None
        reason = fields.get("reason") or ""
        if not isinstance(reason, str) or (
            counterpart is not None and not isinstance(counterpart, str)
        ):
            raise ChangeRefused("invalid", "reason and counterpart are text")
        return await asyncio.to_thread(
            lambda: self.changes.request(
                actor=session.viewer.person_id, team=team, rota=str(fields.get("rota") or ""),
                kind=str(fields.get("kind") or ""), start=start, end=end,
                counterpart=counterpart, swap_start=_when(fields.get("swap_start")),
                swap_end=_when(fields.get("swap_end")), reason=reason,
            )
        )  # fmt: skip

    def _refusal_text(self, lang: str, exc: ChangeRefused) -> str:
        return word("refused_rule", lang, rule=exc.rule, message=exc.message)

    # -- HTML -------------------------------------------------------------------------

    async def list_page(
        self, request: web.Request, error: ChangeRefused | None = None, status: int = 200
    ) -> web.Response:
        session = await self.server.require(request)
        ctx = self.server.context(request, session)
        notice = None
        done = request.query.get("done")
        requests = await self._requests(session)
        if done:
            hit = next((r for r in requests if r.id == done), None)
            if hit is not None:
                notice = word(
                    "change_done",
                    ctx.lang,
                    id=hit.id,
                    status=word("status_" + hit.status, ctx.lang),
                )
        page = list_page(
            ctx, self.server.config(), requests, session.viewer.manages, notice,
            self._refusal_text(ctx.lang, error) if error else None,
        )  # fmt: skip
        return self.server.html(page, status)

    def _slot(self, request: web.Request, session: Session, fields: Any) -> Slot:
        config = self.server.config()
        team = fields.get("team")
        if not isinstance(team, str) or team not in config.teams or not session.viewer.sees(team):
            raise self.server.not_found(request, session)
        rota = fields.get("rota")
        start, end = _when(fields.get("start")), _when(fields.get("end"))
        team_cfg = config.teams[team]
        if rota not in team_cfg.rotas or start is None or end is None or end <= start:
            raise self.server.not_found(request, session)
        held = shifts(team_cfg, str(rota), start, end)
        if not held:
            raise self.server.not_found(request, session)
        return Slot(team, str(rota), start, end, held[0].person_id)

    async def form(self, request: web.Request) -> web.Response:
        session = await self.server.require(request)
        slot = self._slot(request, session, request.query)
        ctx = self.server.context(request, session)
        return self.server.html(
            form_page(ctx, self.server.config(), slot, session.viewer.person_id)
        )

    async def create(self, request: web.Request) -> web.Response:
        session, form = await self.server.require_post(request)
        fields = {
            k: form.get(k)
            for k in ("team", "rota", "kind", "start", "end", "counterpart", "reason")
        }
        try:
            made = await self._create(session, fields)
        except ChangeRefused as exc:
            if exc.rule == "not_found":
                raise self.server.not_found(request, session) from None
            ctx = self.server.context(request, session)
            slot = self._slot(request, session, fields)
            page = form_page(ctx, self.server.config(), slot, session.viewer.person_id,
                             self._refusal_text(ctx.lang, exc))  # fmt: skip
            return self.server.html(page, api.refusal_status(exc.rule))
        raise web.HTTPSeeOther(f"{self.server.prefix}/changes?done={quote(made.id)}")

    async def act(self, request: web.Request) -> web.Response:
        session, form = await self.server.require_post(request)
        note = form.get("note")
        try:
            done = await self._run(session, request.match_info["id"], request.match_info["action"],
                                   note if isinstance(note, str) else "")  # fmt: skip
        except ChangeRefused as exc:
            if exc.rule == "not_found":
                raise self.server.not_found(request, session) from None
            return await self.list_page(request, exc, api.refusal_status(exc.rule))
        raise web.HTTPSeeOther(f"{self.server.prefix}/changes?done={quote(done.id)}")

    # -- JSON API ---------------------------------------------------------------------

    async def _api_session(
        self, request: web.Request, post: bool = False
    ) -> Session | web.Response:
        return await self.server.api_session(request, post)

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = json.loads(await request.text())
        except ValueError:
            raise ChangeRefused("invalid", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ChangeRefused("invalid", "the body is a JSON object")
        return body

    async def openapi(self, request: web.Request) -> web.Response:
        web_cfg = self.server.config().web
        return web.json_response(api.openapi(web_cfg.public_url if web_cfg else "", __version__))

    async def api_oncall(self, request: web.Request) -> web.Response:
        session = await self._api_session(request)
        if isinstance(session, web.Response):
            return session
        server = self.server
        lines, rotas = on_call_now(
            server.config(), session.viewer, server.clock(), server.on_call_override
        )
        return web.json_response(api.oncall_json(lines, rotas))

    async def api_shifts(self, request: web.Request) -> web.Response:
        session = await self._api_session(request)
        if isinstance(session, web.Response):
            return session
        config = self.server.config()
        team = request.match_info["team"]
        if team not in config.teams or not session.viewer.sees(team):
            return _error(404, "not_found", "no such team")
        start, end = _when(request.query.get("from")), _when(request.query.get("to"))
        if start is None or end is None or not timedelta(0) < end - start <= MAX_SPAN:
            return _error(
                422, "invalid", "from and to: ISO 8601 with a zone, at most 400 days apart"
            )
        team_cfg = config.teams[team]
        names = {pid: p.name for pid, p in team_cfg.people.items()}
        body = [
            {"rota": s.rota, "person": s.person_id,
             "name": names.get(s.person_id, s.person_id),
             "start": s.start.isoformat(), "end": s.end.isoformat(), "source": str(s.source),
             "reason": s.reason, "requested_by": s.requested_by}
            for rota in team_cfg.rotas for s in shifts(team_cfg, rota, start, end)
        ]  # fmt: skip
        return web.json_response(body)

    async def api_changes(self, request: web.Request) -> web.Response:
        session = await self._api_session(request)
        if isinstance(session, web.Response):
            return session
        try:
            found = await self._requests(
                session, request.query.get("team"), request.query.get("status")
            )
        except ChangeRefused as exc:
            return _error(api.refusal_status(exc.rule), exc.rule, exc.message)
        return web.json_response([api.change_json(r) for r in found])

    async def api_create(self, request: web.Request) -> web.Response:
        session = await self._api_session(request, post=True)
        if isinstance(session, web.Response):
            return session
        try:
            made = await self._create(session, await self._json_body(request))
        except ChangeRefused as exc:
            return _error(api.refusal_status(exc.rule), exc.rule, exc.message)
        return web.json_response(api.change_json(made), status=201)

    async def api_act(self, request: web.Request) -> web.Response:
        session = await self._api_session(request, post=True)
        if isinstance(session, web.Response):
            return session
        try:
            note = (await self._json_body(request)).get("note") or ""
            done = await self._run(
                session, request.match_info["id"], request.match_info["action"], str(note)
            )
        except ChangeRefused as exc:
            return _error(api.refusal_status(exc.rule), exc.rule, exc.message)
        return web.json_response(api.change_json(done))
