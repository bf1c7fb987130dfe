"""The web planning's HTTP listener (`web:`): thin aiohttp handlers over astreinte_ari.web.

Every page checks the session and the viewer's rights itself (a team the
viewer may not see is a 404, whether it exists or not); every POST checks the
Origin and the session's CSRF token. Pages are also served under the path of
`web.public_url`, so a reverse proxy may forward the prefix or strip it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.router import OnCallOverride
from astreinte_ari.web import pages
from astreinte_ari.web.auth import csrf_matches, csrf_token
from astreinte_ari.web.changes_pages import change_link
from astreinte_ari.web.i18n import pick_language, word
from astreinte_ari.web.planning import Entry, local_now, month_view, on_call_now, year_view
from astreinte_ari.web.ports import ChangesPort
from astreinte_ari.web.signin import LOGIN_PATH, Session, SignInDesk
from astreinte_ari.web.style import CSS

log = logging.getLogger(__name__)

COOKIE = "astreinte_session"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Section = Callable[[pages.PageContext, Session, str, str], Awaitable[str]]
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    # The one-time link must not leak to another site ("no-referrer" would make
    # browsers send "Origin: null" with our own forms).
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def json_error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


def _secure(headers: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)


class WebServer:
    def __init__(
        self,
        desk: SignInDesk,
        config: Callable[[], AppConfig],
        clock: Callable[[], datetime],
        on_call_override: OnCallOverride | None = None,
    ) -> None:
        self.desk = desk
        self.config = config
        self.clock = clock
        self.on_call_override = on_call_override
        self.extra_routes: list[Callable[[web.Application, str], None]] = []
        self.changes: ChangesPort | None = None  # set with the change routes (web_changes.py)
        # More sections under a month table: (ctx, session, "team" | "person", id) -> HTML
        self.sections: list[Section] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- plumbing ---------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        web_cfg = self.config().web
        return web_cfg.path_prefix if web_cfg else ""

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._security], client_max_size=64 * 1024)
        for prefix in sorted({"", self.prefix}):
            app.add_routes(
                [
                    web.get(f"{prefix}/", self.now),
                    web.get(f"{prefix}/static/web.css", self.css),
                    web.get(f"{prefix}/{LOGIN_PATH}", self.login_form),
                    web.post(f"{prefix}/{LOGIN_PATH}", self.login_request),
                    web.get(f"{prefix}/{LOGIN_PATH}/{{token}}", self.link_page),
                    web.post(f"{prefix}/{LOGIN_PATH}/{{token}}", self.link_use),
                    web.post(f"{prefix}/logout", self.logout),
                    web.get(f"{prefix}/teams/{{team}}/month", self.team_month),
                    web.get(f"{prefix}/teams/{{team}}/year", self.team_year),
                    web.get(f"{prefix}/people/{{person}}/month", self.person_month),
                    web.get(f"{prefix}/people/{{person}}/year", self.person_year),
                ]
            )
            for add in self.extra_routes:
                add(app, prefix)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None)  # URLs hold links
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        log.info("web planning on %s:%s", host, self.port)

    async def close(self) -> None:
        await self.desk.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _security(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD") and not self._same_origin(request):
            response: web.StreamResponse = web.Response(status=403, text="origin refused")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                _secure(exc.headers)
                raise
        _secure(response.headers)
        return response

    def _same_origin(self, request: web.Request) -> bool:
        """A POST from one of our own pages (or from a non-browser client, which sends
        no Origin and must then carry the session's CSRF token)."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        web_cfg = self.config().web
        public = urlsplit(web_cfg.public_url if web_cfg else "")
        allowed = {f"{public.scheme}://{public.netloc}", f"{request.scheme}://{request.host}"}
        return origin in allowed

    def lang(self, request: web.Request) -> str:
        return pick_language(self.config().language, request.headers.get("Accept-Language"))

    def context(self, request: web.Request, session: Session | None = None) -> pages.PageContext:
        config = self.config()
        return pages.PageContext(
            lang=self.lang(request),
            prefix=self.prefix,
            viewer=session.viewer if session else None,
            csrf=csrf_token(session.token) if session else None,
            teams=tuple(session.viewer.visible_teams(config)) if session else (),
            changes=self.changes is not None,
        )

    def html(self, text: str, status: int = 200) -> web.Response:
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    async def session_of(self, request: web.Request) -> Session | None:
        return await self.desk.session(request.cookies.get(COOKIE))

    async def require(self, request: web.Request) -> Session:
        session = await self.session_of(request)
        if session is None:
            raise web.HTTPSeeOther(f"{self.prefix}/{LOGIN_PATH}")
        return session

    async def require_post(self, request: web.Request) -> tuple[Session, Any]:
        """The session of a form POST whose CSRF token matches; 403 otherwise."""
        session = await self.session_of(request)
        form = await request.post()
        sent = form.get("csrf") or request.headers.get("X-CSRF-Token")
        if session is None or not csrf_matches(
            session.token, sent if isinstance(sent, str) else None
        ):
            raise web.HTTPForbidden(
                text=pages.message_page(
                    self.context(request), word("forbidden", self.lang(request)),
                    word("csrf_refused", self.lang(request)), error=True,
                ),
                content_type="text/html",
            )  # fmt: skip
        return session, form

    async def api_session(self, request: web.Request, post: bool = False) -> Session | web.Response:
        """The API's caller: an API token (Authorization: Bearer, no CSRF: a tool's
        own credential, which a browser never sends by itself), or a browser session
        whose POSTs carry the X-CSRF-Token header."""
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            session = await self.desk.api_session(bearer.strip())
            if session is None:
                return json_error(401, "unauthenticated", "unknown, expired or revoked API token")
            return session
        session = await self.session_of(request)
        if session is None:
            return json_error(401, "unauthenticated", "sign in first (docs/web.md)")
        if post and not csrf_matches(session.token, request.headers.get("X-CSRF-Token")):
            return json_error(403, "csrf", "the X-CSRF-Token header is missing or wrong")
        return session

    def not_found(self, request: web.Request, session: Session | None) -> web.HTTPNotFound:
        ctx = self.context(request, session)
        page = pages.message_page(ctx, word("not_found", ctx.lang), word("not_found", ctx.lang))
        return web.HTTPNotFound(text=page, content_type="text/html")

    # -- sign-in ----------------------------------------------------------------------

    async def css(self, request: web.Request) -> web.Response:
        return web.Response(
            text=CSS, content_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    async def login_form(self, request: web.Request) -> web.Response:
        return self.html(pages.login_page(self.context(request)))

    async def login_request(self, request: web.Request) -> web.Response:
        form = await request.post()
        address = form.get("address")
        lang = self.lang(request)
        if isinstance(address, str) and address.strip():
            await self.desk.request_link(address[:254], request.remote or "?", lang)
        web_cfg = self.config().web
        minutes = web_cfg.login_link_minutes if web_cfg else 15
        notice = word("link_sent", lang, minutes=minutes)
        return self.html(pages.login_page(self.context(request), notice))

    async def link_page(self, request: web.Request) -> web.Response:
        return self.html(
            pages.confirm_link_page(self.context(request), request.match_info["token"])
        )

    async def link_use(self, request: web.Request) -> web.Response:
        result = await self.desk.sign_in(request.match_info["token"])
        if isinstance(result, str):
            ctx = self.context(request)
            page = pages.message_page(
                ctx, word("sign_in", ctx.lang), word("link_refused", ctx.lang), error=True
            )
            return self.html(page, status=403)
        response = web.HTTPSeeOther(f"{self.prefix}/")
        web_cfg = self.config().web
        response.set_cookie(
            COOKIE,
            result.token,
            max_age=int((result.expires_at - self.clock()).total_seconds()),
            path=self.prefix or "/",
            httponly=True,
            secure=bool(web_cfg and web_cfg.secure_cookies),
            samesite="Lax",
        )
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        session, _ = await self.require_post(request)
        await self.desk.sign_out(session.token)
        response = web.HTTPSeeOther(f"{self.prefix}/{LOGIN_PATH}")
        response.del_cookie(COOKIE, path=self.prefix or "/")
        raise response

    # -- planning ---------------------------------------------------------------------

    async def now(self, request: web.Request) -> web.Response:
        session = await self.require(request)
        config, now = self.config(), self.clock()
        lines, rotas = on_call_now(config, session.viewer, now, self.on_call_override)
        return self.html(pages.now_page(self.context(request, session), lines, rotas))

    def _team(self, request: web.Request, session: Session) -> str:
        team = request.match_info["team"]
        if team not in self.config().teams or not session.viewer.sees(team):
            raise self.not_found(request, session)
        return team

    def _person_teams(self, request: web.Request, session: Session) -> tuple[str, list[str]]:
        person = request.match_info["person"]
        config = self.config()
        teams = [
            n for n, t in config.teams.items() if person in t.people and session.viewer.sees(n)
        ]
        if not teams:
            raise self.not_found(request, session)
        return person, teams

    def _month(self, request: web.Request) -> tuple[int, int]:
        today = local_now(self.config(), self.clock()).date()
        try:
            first = date.fromisoformat(request.query.get("m", "") + "-01")
        except ValueError:
            first = today
        return first.year, first.month

    def _year(self, request: web.Request) -> int:
        raw = request.query.get("y", "")
        if raw.isdigit() and 1970 <= int(raw) <= 2200:
            return int(raw)
        return local_now(self.config(), self.clock()).year

    async def team_month(self, request: web.Request) -> web.Response:
        session = await self.require(request)
        team = self._team(request, session)
        year, month = self._month(request)
        view = month_view(self.config(), team, year, month)
        ctx = self.context(request, session)
        title = f"{word('team', ctx.lang)} {team}"
        today = local_now(self.config(), self.clock()).date()
        base = f"/teams/{quote(team, safe='')}/month"
        extra = await self.extra(ctx, session, "team", team)
        return self.html(
            pages.month_page(ctx, title, base, [view], today, self.actions(ctx, session), extra)
        )

    async def team_year(self, request: web.Request) -> web.Response:
        session = await self.require(request)
        team = self._team(request, session)
        view = year_view(self.config(), team, self._year(request))
        ctx = self.context(request, session)
        base = f"/teams/{quote(team, safe='')}/year"
        return self.html(pages.year_page(ctx, f"{word('team', ctx.lang)} {team}", base, [view]))

    async def person_month(self, request: web.Request) -> web.Response:
        session = await self.require(request)
        person, teams = self._person_teams(request, session)
        year, month = self._month(request)
        config = self.config()
        views = [month_view(config, t, year, month, person=person) for t in teams]
        ctx = self.context(request, session)
        name = config.teams[teams[0]].people[person].name
        today = local_now(config, self.clock()).date()
        base = f"/people/{quote(person, safe='')}/month"
        extra = await self.extra(ctx, session, "person", person)
        return self.html(
            pages.month_page(ctx, name, base, views, today, self.actions(ctx, session), extra)
        )

    async def person_year(self, request: web.Request) -> web.Response:
        session = await self.require(request)
        person, teams = self._person_teams(request, session)
        config = self.config()
        year = self._year(request)
        views = [year_view(config, t, year, person=person) for t in teams]
        name = config.teams[teams[0]].people[person].name
        base = f"/people/{quote(person, safe='')}/year"
        return self.html(pages.year_page(self.context(request, session), name, base, views))

    async def extra(self, ctx: pages.PageContext, session: Session, kind: str, subject: str) -> str:
        return "".join([await section(ctx, session, kind, subject) for section in self.sections])

    def actions(
        self, ctx: pages.PageContext, session: Session
    ) -> Callable[[str, Entry], str] | None:
        """The "change" link beside each shift still to come, for the team's agents."""
        if self.changes is None:
            return None
        config, now, me = self.config(), self.clock(), session.viewer.person_id

        def link(team: str, item: Entry) -> str:
            if item.end <= now or me not in config.teams[team].people:
                return ""
            return change_link(ctx, team, item)

        return link
