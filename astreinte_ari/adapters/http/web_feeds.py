"""Calendar subscriptions on the web: a person subscribes to their own shifts, a
team's manager to the team's; the URL is shown once (only its hash is kept).

Who sees and revokes what: a person's feeds, that person (and admins); a team's
feeds, its managers (and admins). Any other feed is a 404, as if it did not
exist. The URL is served by the alert links endpoint: without `alerting:` the
section says so and every create is refused (409). Every POST passed the Origin
check and carries the session's CSRF token (web_server.py); the store audits
each create and revoke with the signed-in person as `by`.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from aiohttp import web

from astreinte_ari.adapters.http.web_server import WebServer, json_error
from astreinte_ari.adapters.store.calendar_feeds import feed_url
from astreinte_ari.web import api, pages
from astreinte_ari.web.feeds_pages import feed_created_page, feed_section
from astreinte_ari.web.i18n import word
from astreinte_ari.web.ports import Feed, FeedsPort
from astreinte_ari.web.signin import Session


class FeedRefused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def _page_of(feed: Feed) -> str:
    if feed.person:
        return f"/people/{quote(feed.person, safe='')}/month#calendar"
    return f"/teams/{quote(feed.team, safe='')}/month#calendar"


class FeedHandlers:
    def __init__(self, server: WebServer, feeds: FeedsPort) -> None:
        self.server = server
        self.feeds = feeds
        server.extra_routes.append(self.add_routes)
        server.sections.append(self.section)

    def add_routes(self, app: web.Application, prefix: str) -> None:
        p, a = prefix, prefix + api.API_PREFIX
        app.add_routes(
            [
                web.post(f"{p}/people/{{person}}/feeds", self.create_mine),
                web.post(f"{p}/teams/{{team}}/feeds", self.create_team),
                web.post(f"{p}/feeds/{{id}}/revoke", self.revoke),
                web.get(f"{a}/feeds", self.api_list),
                web.post(f"{a}/feeds", self.api_create),
                web.post(f"{a}/feeds/{{id}}/revoke", self.api_revoke),
            ]
        )

    # -- rules ------------------------------------------------------------------------

    def public_url(self) -> str | None:
        alerting = self.server.config().alerting
        return alerting.links.public_url if alerting is not None else None

    def _my_teams(self, session: Session) -> list[str]:
        me = session.viewer.person_id
        return [n for n, t in self.server.config().teams.items() if me in t.people]

    @staticmethod
    def may_see(session: Session, feed: Feed) -> bool:
        viewer = session.viewer
        if feed.person:
            return viewer.admin or feed.person == viewer.person_id
        return viewer.manages(feed.team)

    async def visible(self, session: Session) -> list[Feed]:
        found = await asyncio.to_thread(self.feeds.list)
        return [f for f in found if self.may_see(session, f)]

    async def _create(self, session: Session, scope: str, team: object) -> tuple[Feed, str]:
        """A new feed of `scope` for `team` as the signed-in person; FeedRefused otherwise."""
        if self.public_url() is None:
            raise FeedRefused(409, "unavailable", "calendar feeds need `alerting:` configured")
        config, viewer = self.server.config(), session.viewer
        if scope == "person":
            if not isinstance(team, str) or team not in self._my_teams(session):
                raise FeedRefused(404, "not_found", "you are in no such team")
            person: str | None = viewer.person_id
        elif scope == "team":
            if not isinstance(team, str) or team not in config.teams or not viewer.manages(team):
                raise FeedRefused(404, "not_found", "no such team among those you manage")
            person = None
        else:
            raise FeedRefused(422, "invalid", "scope is person or team")
        return await asyncio.to_thread(
            lambda: self.feeds.create(
                team=team, person=person, by=viewer.person_id, now=self.server.clock()
            )
        )

    async def _revoke(self, session: Session, feed_id: str) -> Feed:
        known = {f.id: f for f in await self.visible(session)}
        if feed_id not in known:
            raise FeedRefused(404, "not_found", "no such active feed")
        done = await asyncio.to_thread(
            lambda: self.feeds.revoke(feed_id, by=session.viewer.person_id, now=self.server.clock())
        )
        if done is None:  # revoked meanwhile
            raise FeedRefused(404, "not_found", "no such active feed")
        return done

    # -- HTML -------------------------------------------------------------------------

    async def section(
        self, ctx: pages.PageContext, session: Session, kind: str, subject: str
    ) -> str:
        viewer = session.viewer
        mine = kind == "person" and subject == viewer.person_id
        if kind == "person" and not (mine or viewer.admin):
            return ""
        if kind == "team" and not viewer.manages(subject):
            return ""
        shown = [
            f for f in await self.visible(session)
            if (f.person == subject if kind == "person" else f.person is None and f.team == subject)
        ]  # fmt: skip
        create = f"/{'people' if kind == 'person' else 'teams'}/{quote(subject, safe='')}/feeds"
        return feed_section(
            ctx,
            intro="calendar_intro" if kind == "person" else "team_calendar_intro",
            create_path=create if mine or kind == "team" else None,
            teams=self._my_teams(session) if kind == "person" else [],
            feeds=shown,
            available=self.public_url() is not None,
        )

    async def _html_create(
        self, request: web.Request, session: Session, scope: str, team: Any
    ) -> web.Response:
        ctx = self.server.context(request, session)
        try:
            feed, token = await self._create(session, scope, team)
        except FeedRefused as exc:
            if exc.status == 404:
                raise self.server.not_found(request, session) from None
            text = word("calendar_unavailable", ctx.lang)
            page = pages.message_page(ctx, word("calendar", ctx.lang), text, error=True)
            return self.server.html(page, exc.status)
        url = feed_url(self.public_url() or "", token)
        title = f"{word('calendar', ctx.lang)} – {feed.person or feed.team}"
        return self.server.html(feed_created_page(ctx, title, url, _page_of(feed)))

    async def create_mine(self, request: web.Request) -> web.Response:
        session, form = await self.server.require_post(request)
        if request.match_info["person"] != session.viewer.person_id:
            raise self.server.not_found(request, session)  # nobody subscribes for another
        return await self._html_create(request, session, "person", form.get("team"))

    async def create_team(self, request: web.Request) -> web.Response:
        session, _ = await self.server.require_post(request)
        return await self._html_create(request, session, "team", request.match_info["team"])

    async def revoke(self, request: web.Request) -> web.Response:
        session, _ = await self.server.require_post(request)
        try:
            done = await self._revoke(session, request.match_info["id"])
        except FeedRefused:
            raise self.server.not_found(request, session) from None
        raise web.HTTPSeeOther(self.server.prefix + _page_of(done))

    # -- JSON API ---------------------------------------------------------------------

    async def api_list(self, request: web.Request) -> web.Response:
        session = await self.server.api_session(request)
        if isinstance(session, web.Response):
            return session
        return web.json_response([api.feed_json(f) for f in await self.visible(session)])

    async def api_create(self, request: web.Request) -> web.Response:
        session = await self.server.api_session(request, post=True)
        if isinstance(session, web.Response):
            return session
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return json_error(422, "invalid", "the body is not JSON")
        if not isinstance(body, dict):
            return json_error(422, "invalid", "the body is a JSON object")
        try:
            feed, token = await self._create(session, body.get("scope", "person"), body.get("team"))
        except FeedRefused as exc:
            return json_error(exc.status, exc.error, exc.message)
        made = api.feed_json(feed) | {"url": feed_url(self.public_url() or "", token)}
        return web.json_response(made, status=201)

    async def api_revoke(self, request: web.Request) -> web.Response:
        session = await self.server.api_session(request, post=True)
        if isinstance(session, web.Response):
            return session
        try:
            done = await self._revoke(session, request.match_info["id"])
        except FeedRefused as exc:
            return json_error(exc.status, exc.error, exc.message)
        return web.json_response(api.feed_json(done))
