"""The service's small HTTP endpoint: acknowledgement links and voicemail downloads.

GET /ack/<id> shows a confirmation button (mail scanners prefetch links: a GET
must not acknowledge); POST /ack/<id> acknowledges; GET /vm/<id> returns the
recording. Ids are short, random and looked up (adapters/store/alert_links.py);
the signed tokens of earlier releases (they contain a ".") still work until
they expire. Other features add their routes (`more_routes`): the calendar
feeds (calendar_feed.py) and the SMS gateway's inbound messages (sms_inbound.py).
Every route is also served under the path of `alerting.links.public_url`
(e.g. https://host/astreinte/a/<id>), so a reverse proxy may forward the prefix
or strip it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from astreinte_ari.alerting.ack_page import acked_page, confirm_page, handled_page
from astreinte_ari.alerting.engine import AlertEngine
from astreinte_ari.alerting.links import (
    ACK_PATH,
    VOICEMAIL_PATH,
    BadToken,
    LinkClaim,
    LinkIssuer,
    LinkSigner,
)

_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Astreinte</title></head>
<body style="font-family:sans-serif;max-width:30em;margin:2em auto">{body}</body></html>"""


def _page(body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(body=body), status=status, content_type="text/html")


def _html(page: str, status: int = 200) -> web.Response:
    return web.Response(text=page, status=status, content_type="text/html")


class LinkEndpoint:
    def __init__(
        self,
        engine: AlertEngine,
        links: LinkIssuer,
        signer: LinkSigner | None,
        recordings_dir: Path,
        public_url: str = "",
        note_access: Callable[[str, Path, str], None] | None = None,
        more_routes: Sequence[Callable[[str], list[web.RouteDef]]] = (),
    ) -> None:
        # note_access(subject, file, person): puts the download in the audit trail
        # (adapters/store/recording_access.py) before the file is served.
        self.note_access = note_access
        self.engine = engine
        self.links = links
        self.signer = signer
        self.recordings_dir = recordings_dir.resolve()
        self.app = web.Application()
        prefixes = {"", urlsplit(public_url).path.rstrip("/")}
        for prefix in sorted(prefixes):
            self.app.add_routes(
                [
                    web.get(f"{prefix}/{ACK_PATH}/{{link}}", self.ack_page),
                    web.post(f"{prefix}/{ACK_PATH}/{{link}}", self.ack),
                    web.get(f"{prefix}/{VOICEMAIL_PATH}/{{link}}", self.voicemail),
                ]
            )
            for routes_under in more_routes:  # calendar feeds, inbound SMS: same prefixes
                self.app.add_routes(routes_under(prefix))
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server  # the bound port when 0 was asked (tests)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _claim(self, request: web.Request, purpose: str) -> LinkClaim:
        now, link = self.engine.clock(), request.match_info["link"]
        if "." not in link:
            claim = await asyncio.to_thread(self.links.resolve, link, purpose, now)
            if claim is None:
                raise web.HTTPForbidden(text="lien refusé / link refused: unknown or expired")
            return claim
        if self.signer is None:
            raise web.HTTPForbidden(text="lien refusé / link refused")
        try:
            return self.signer.verify(link, purpose, now)
        except BadToken as exc:
            raise web.HTTPForbidden(text=f"lien refusé / link refused: {exc}") from None

    async def ack_page(self, request: web.Request) -> web.Response:
        claim = await self._claim(request, "ack")
        alert = await asyncio.to_thread(self.engine.store.get, claim.alert_id)
        if alert is None:
            raise web.HTTPNotFound(text="alerte inconnue / unknown alert")
        # In the alert's language (that of its line or shift rule): ack_page.py.
        timezone = self.engine.config.timezone
        if not alert.is_open:
            return _html(handled_page(alert, timezone))
        return _html(confirm_page(alert, timezone))

    async def ack(self, request: web.Request) -> web.Response:
        claim = await self._claim(request, "ack")
        acked = await self.engine.ack(claim.alert_id, by=claim.person_id, via="link")
        timezone = self.engine.config.timezone
        if acked is None:
            alert = await asyncio.to_thread(self.engine.store.get, claim.alert_id)
            if alert is None:
                return _page("<p>Alerte déjà traitée / already handled.</p>", status=409)
            return _html(handled_page(alert, timezone), status=409)
        return _html(acked_page(acked, timezone))

    async def voicemail(self, request: web.Request) -> web.StreamResponse:
        claim = await self._claim(request, "vm")
        alert = await asyncio.to_thread(self.engine.store.get, claim.alert_id)
        if alert is None or not alert.voicemail_path:
            raise web.HTTPNotFound(text="pas de message")
        path = Path(alert.voicemail_path).resolve()
        # Serve only our own recordings, whatever the database says.
        if not path.is_relative_to(self.recordings_dir) or not path.is_file():
            raise web.HTTPNotFound(text="pas de message")
        if self.note_access is not None:
            subject = alert.call_id or alert.id
            try:
                await asyncio.to_thread(self.note_access, subject, path, claim.person_id)
            except Exception as exc:  # no trace, no file (the database is down...)
                raise web.HTTPServiceUnavailable(text="réessayez / try again later") from exc
        return web.FileResponse(
            path,
            headers={
                "Content-Type": "audio/wav",
                "Content-Disposition": f'attachment; filename="message-{alert.id}.wav"',
            },
        )
