"""SMS through any HTTP gateway: URL, method, headers, body template, success rule.

Failures (network error, unexpected status, missing success text) are retried
with exponential backoff, then reported as NotifyError.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from urllib.parse import quote

import aiohttp

from astreinte_ari.adapters.notify.sms_text import fit_sms, segments
from astreinte_ari.alerting.ports import (
    Acknowledge,
    AlertMessage,
    Delivery,
    NotifyError,
    Progress,
    Recipient,
)
from astreinte_ari.config.alerting import SmsGatewayConfig

log = logging.getLogger(__name__)
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_SEGMENTS = 2  # 306 GSM-7 characters: room for the text and two short links


# With replies taken (alerting.sms.inbound): how to acknowledge without the link.
REPLY_HINT = {"fr": "Repondez OK pour acquitter.", "en": "Reply OK to acknowledge."}


def sms_text(
    message: AlertMessage, max_segments: int = MAX_SEGMENTS, *, reply_hint: bool = False
) -> str:
    links = []
    if message.ack_url:
        links.append(("OK:", message.ack_url))
    if message.voicemail_url:
        links.append(("Msg:", message.voicemail_url))
    text = message.text
    if reply_hint and message.kind != "sms_help":  # not on the help SMS itself
        text += " " + REPLY_HINT.get(message.language, REPLY_HINT["fr"])
    return fit_sms(text, links, max_segments)


def render_body(template: str, to: str, text: str) -> str:
    """Placeholders are replaced literally (no str.format: JSON bodies are full of braces)."""
    values = {
        "{to_json}": json.dumps(to),
        "{text_json}": json.dumps(text, ensure_ascii=False),
        "{to_url}": quote(to, safe=""),
        "{text_url}": quote(text, safe=""),
        "{to}": to,
        "{text}": text,
    }
    pattern = re.compile("|".join(re.escape(k) for k in values))
    return pattern.sub(lambda m: values[m.group(0)], template)


def render_headers(headers: dict[str, str]) -> dict[str, str]:
    def env(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise NotifyError(f"environment variable {m.group(1)} (SMS gateway header) is not set")
        return value

    return {name: _ENV_RE.sub(env, value) for name, value in headers.items()}


class SmsNotifier:
    channel = "sms"

    def __init__(self, config: SmsGatewayConfig) -> None:
        self._config = config

    async def send(
        self,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None = None,
        progress: Progress | None = None,
    ) -> Delivery:
        cfg = self._config
        text = sms_text(message, reply_hint=cfg.inbound is not None)
        body = render_body(cfg.body, to.mobile, text)
        headers = {"Content-Type": cfg.content_type, **render_headers(dict(cfg.headers))}
        url = render_body(cfg.url, to.mobile, text) if cfg.method == "GET" else cfg.url
        delay = cfg.backoff
        last = ""
        timeout = aiohttp.ClientTimeout(total=cfg.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(cfg.retries + 1):
                if attempt:
                    log.warning(
                        "SMS to %s failed (%s), retry %d in %.1fs",
                        to.person_id,
                        last,
                        attempt,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay *= 2
                try:
                    async with session.request(
                        cfg.method,
                        url,
                        data=None if cfg.method == "GET" else body.encode(),
                        headers=headers,
                    ) as response:
                        reply = await response.text(errors="replace")
                        if response.status not in cfg.success_status:
                            last = f"HTTP {response.status}"
                            continue
                        if cfg.success_contains and cfg.success_contains not in reply:
                            last = f"HTTP {response.status} without {cfg.success_contains!r}"
                            continue
                        encoding, count = segments(text)
                        return Delivery(
                            f"SMS to {to.mobile} ({count} {encoding} segment(s), "
                            f"attempt {attempt + 1})"
                        )
                except (aiohttp.ClientError, TimeoutError) as exc:
                    last = f"{type(exc).__name__}: {exc}"[:200]
        raise NotifyError(f"SMS gateway failed {cfg.retries + 1} time(s): {last}")
