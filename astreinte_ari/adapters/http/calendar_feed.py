"""GET /ics/<token>.ics: the on-call shifts as a calendar people subscribe to.

Served by the links endpoint (alert_links.py), also under the path of
`alerting.links.public_url`. The feed is computed from the configuration in
force at each fetch (a YAML edit shows at the next refresh); an unknown or
revoked token gets the same 404, so a URL tells nothing about other URLs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import date, datetime

from aiohttp import web

from astreinte_ari.adapters.store.calendar_feeds import FEED_PATH, CalendarFeed
from astreinte_ari.config.model import AppConfig
from astreinte_ari.schedule.reports import feed_day, subscription_feed

log = logging.getLogger(__name__)

# Calendar clients poll every few hours at best (Google: up to a day); a shorter
# max-age lets Thunderbird/Outlook see an edit sooner without hammering the service.
CACHE_CONTROL = "private, max-age=900"
MAX_CACHED = 256  # feeds kept computed (a team's, a person's), ~40-100 kB each
_NOT_FOUND = "calendrier inconnu / unknown calendar"


class CalendarFeedRoutes:
    def __init__(
        self,
        resolve: Callable[[str], CalendarFeed | None],
        current_config: Callable[[], AppConfig],
        clock: Callable[[], datetime],
    ) -> None:
        self.resolve = resolve  # token -> active feed (looked up by its SHA-256)
        self.current_config = current_config
        self.clock = clock
        # (team, person, day) -> (the configuration it was computed from, body, ETag):
        # a year of shifts takes 0.1-0.3 s, and every client polls; any new
        # configuration object (an accepted edit) makes the entry stale.
        self._made: dict[tuple[str, str | None, date], tuple[AppConfig, bytes, str]] = {}

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [web.get(f"{prefix}/{FEED_PATH}/{{token:[^/]+}}.ics", self.fetch)]

    async def fetch(self, request: web.Request) -> web.Response:
        feed = await asyncio.to_thread(self.resolve, request.match_info["token"])
        config = self.current_config()
        team = config.teams.get(feed.team) if feed is not None else None
        if feed is None or team is None or (feed.person and feed.person not in team.people):
            raise web.HTTPNotFound(text=_NOT_FOUND)
        body, etag = await self._feed(config, feed.team, feed.person)
        headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
        wanted = request.headers.get("If-None-Match", "")
        if etag in (tag.strip() for tag in wanted.split(",")) or wanted.strip() == "*":
            return web.Response(status=304, headers=headers)
        log.debug("calendar feed %s fetched (%d bytes)", feed.id, len(body))
        name = f"astreinte-{feed.team}" + (f"-{feed.person}" if feed.person else "")
        headers["Content-Disposition"] = f'inline; filename="{name}.ics"'
        return web.Response(
            body=body, headers=headers, content_type="text/calendar", charset="utf-8"
        )

    async def _feed(self, config: AppConfig, team: str, person: str | None) -> tuple[bytes, str]:
        now = self.clock()
        key = (team, person, feed_day(config.teams[team], now))
        made = self._made.get(key)
        if made is not None and made[0] is config:
            return made[1], made[2]
        body = await asyncio.to_thread(
            subscription_feed, team, config.teams[team], now, person=person
        )
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        if len(self._made) >= MAX_CACHED:
            self._made.pop(next(iter(self._made)))  # the oldest entry
        self._made[key] = (config, body, etag)
        return body, etag
