"""POST /sms/inbound/<secret>: the SMS gateway hands over the replies people send.

The secret is in the path or, for gateways that can set headers, in
`alerting.sms.inbound.secret_header` (POST /sms/inbound); both are compared in
constant time. A wrong secret gets 404 in the path form (nothing there to
find), 403 in the header form, and acknowledges nothing. The body is a form or
JSON (`format`), with the sender and the text at `from_field` / `text_field`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from astreinte_ari.alerting.sms_reply import ReplyOutcome
from astreinte_ari.config.alerting import SmsInboundConfig

log = logging.getLogger(__name__)

INBOUND_PATH = "sms/inbound"
MAX_BODY = 64 * 1024  # an SMS and its gateway's metadata; anything bigger is refused


def _field(data: Any, path: str) -> str | None:
    """A text at a dotted path of a JSON object (or a form field's name)."""
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    if isinstance(data, int | float) and not isinstance(data, bool):
        return str(data)  # a sender number sent as a JSON number
    return data if isinstance(data, str) else None


class SmsInboundRoutes:
    def __init__(
        self,
        handle: Callable[[str, str], Awaitable[ReplyOutcome]],
        secret: str,
        config: SmsInboundConfig,
    ) -> None:
        self.handle = handle
        self._secret = secret.encode()
        self.config = config

    def routes(self, prefix: str) -> list[web.RouteDef]:
        return [
            web.post(f"{prefix}/{INBOUND_PATH}/{{secret}}", self.by_path),
            web.post(f"{prefix}/{INBOUND_PATH}", self.by_header),
        ]

    def _matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._secret)

    async def by_path(self, request: web.Request) -> web.Response:
        if not self._matches(request.match_info["secret"]):
            log.warning("inbound SMS refused: wrong secret in the path")
            raise web.HTTPNotFound()
        return await self._receive(request)

    async def by_header(self, request: web.Request) -> web.Response:
        if not self._matches(request.headers.get(self.config.secret_header, "")):
            log.warning("inbound SMS refused: wrong or missing %s", self.config.secret_header)
            raise web.HTTPForbidden()
        return await self._receive(request)

    async def _receive(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=0)
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
        text = raw.decode("utf-8", "replace")
        data: Any
        if self.config.format == "json":
            try:
                data = json.loads(text)
            except ValueError:
                raise web.HTTPBadRequest(text="JSON body expected") from None
        else:
            data = dict(parse_qsl(text, keep_blank_values=True))
        sender = _field(data, self.config.from_field)
        message = _field(data, self.config.text_field)
        if sender is None or message is None:
            fields = f"{self.config.from_field} and {self.config.text_field}"
            raise web.HTTPBadRequest(text=f"{fields} expected")
        outcome = await self.handle(sender, message)
        return web.json_response({"result": outcome.result, "acknowledged": len(outcome.acked)})
