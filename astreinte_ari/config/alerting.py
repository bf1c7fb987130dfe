"""Configuration of alerts: notifiers, per-person channel lists, policies, shift starts.

Everything here is optional under the top-level `alerting:` key. Secrets (SMTP
password, SMS gateway token, the link-signing key) come from files or the
environment, never from the YAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from astreinte_ari.config.fields import Frozen, Phone, RingTimeout

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """'90s', '5m', '2h', '1d' or a bare number of minutes -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration like 5m, 90s or 2h is expected")
    if isinstance(value, int):
        return value * 60
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return int(m.group(1)) * _UNIT_S[m.group(2) or "m"]
    raise ValueError(f"'{value}' is not a duration like 5m, 90s or 2h")


Duration = Annotated[int, BeforeValidator(parse_duration)]  # seconds
ChannelKind = Literal["email", "sms", "voice"]


class ChannelSpec(Frozen):
    """One way to reach a person, `after` seconds into each round."""

    via: ChannelKind
    after: Duration = 0


class AlertPolicy(Frozen):
    renotify_every: Duration = 300
    escalate_after: int = Field(2, ge=1, le=100)  # unanswered rounds per person
    max_rounds: int = Field(48, ge=1, le=1000)  # then the alert is closed as "exhausted"

    @field_validator("renotify_every")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 30:
            raise ValueError("renotify_every must be at least 30s")
        return value


class SmtpConfig(Frozen):
    host: str
    port: int = 587
    starttls: bool = True
    ssl: bool = False  # implicit TLS (port 465); exclusive with starttls
    username: str | None = None
    password_file: Path | None = None
    password_env: str = "ASTREINTE_SMTP_PASSWORD"
    sender: str
    ca_file: Path | None = None  # trust this CA for the server certificate (private PKI)
    timeout: int = Field(20, ge=1, le=300)

    @model_validator(mode="after")
    def _tls(self) -> SmtpConfig:
        if self.ssl and self.starttls:
            raise ValueError("choose ssl (port 465) or starttls (port 587), not both")
        return self


class SmsInboundConfig(Frozen):
    """Replies to the alert SMS, as the gateway posts them to the links endpoint at
    /sms/inbound/<secret> (or /sms/inbound with the secret in `secret_header`).
    docs/alerts.md "Acknowledging by SMS reply"."""

    secret_env: str | None = "ASTREINTE_SMS_INBOUND_SECRET"
    secret_file: Path | None = None
    secret_header: str = "X-Astreinte-Secret"
    format: Literal["form", "json"] = "form"
    # Where the sender's number and the text are in the posted body; for JSON a
    # dotted path ("message.from") reaches into nested objects.
    from_field: str = "from"
    text_field: str = "text"
    # How a national number ("0612345678") is made international: "+33". Without
    # it, only international senders ("+33...", "0033...", "33...") are matched.
    national_prefix: str | None = Field(None, pattern=r"^\+[1-9]\d{0,3}$")
    help_reply: bool = True  # answer a reply that is not understood, through the gateway

    @field_validator("secret_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9-]{1,64}$", value):
            raise ValueError(f"'{value}' is not an HTTP header name")
        return value


class SmsGatewayConfig(Frozen):
    """Any HTTP SMS API: the body template gets {to}, {text}, {to_json}, {text_json},
    {to_url}, {text_url}; header values may name environment variables as ${NAME}."""

    url: str
    method: Literal["POST", "PUT", "GET"] = "POST"
    headers: Mapping[str, str] = Field(default_factory=dict)
    body: str = '{"to": {to_json}, "text": {text_json}}'
    content_type: str = "application/json"
    success_status: tuple[int, ...] = (200, 201, 202, 204)
    success_contains: str | None = None  # response body must contain this text
    retries: int = Field(3, ge=0, le=10)
    backoff: float = Field(2.0, ge=0.0, le=300.0)  # seconds, doubled at each retry
    timeout: float = Field(10.0, gt=0, le=120)
    inbound: SmsInboundConfig | None = None  # acknowledging by SMS reply

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s]+$", value):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value


class VoiceAlertConfig(Frozen):
    ring_timeout: RingTimeout = 25
    caller_id: Phone | None = None  # default: trunk.caller_id


class LinksConfig(Frozen):
    """The small HTTP endpoint serving acknowledgement and voicemail links."""

    listen_host: str = "127.0.0.1"
    listen_port: int = Field(8091, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8091"  # as people's phones reach it
    key_file: Path | None = None
    key_env: str = "ASTREINTE_LINK_KEY"
    ttl: Duration = 86400

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s]+$", value):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value.rstrip("/")


class MissedCallAlerts(Frozen):
    enabled: bool = True
    policy: str = "missed_call"


class ShiftStartAlert(Frozen):
    team: str
    rota: str
    before: Duration = 1800  # alert this long before the handoff
    ack_within: Duration = 1200  # deadline, counted from the alert
    supervisor: str
    replacement: str
    policy: str = "shift_start"
    # Language of the texts and voice prompts (fr, en); default: that of the
    # team's first line, else fr.
    language: str | None = Field(None, pattern=r"^[a-z]{2}$")


# What a webhook may be told (docs/alerts.md "Webhooks"); all of them by default.
WebhookEvent = Literal[
    "call_missed", "voicemail_left", "alert_acknowledged", "shift_started", "shift_not_acknowledged"
]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = (
    "call_missed",
    "voicemail_left",
    "alert_acknowledged",
    "shift_started",
    "shift_not_acknowledged",
)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class WebhookConfig(Frozen):
    """One outgoing webhook: a ticketing tool (generic, signed JSON) or a chat room
    (slack, teams, matrix). URLs of Slack/Teams incoming webhooks carry their own
    secret: they come from `url_env` / `url_file`, never from the YAML."""

    kind: Literal["generic", "slack", "teams", "matrix"]
    url: str | None = None  # generic: the receiver; matrix: the homeserver
    url_env: str | None = None
    url_file: Path | None = None
    secret_env: str | None = None  # generic: HMAC-SHA256 signing secret
    secret_file: Path | None = None
    room: str | None = None  # matrix: "!id:server" (or "#alias:server")
    token_env: str | None = None  # matrix: the bot's access token
    token_file: Path | None = None
    events: tuple[WebhookEvent, ...] = WEBHOOK_EVENTS
    # Extra request headers (e.g. a ticketing tool's API token); values may name
    # environment variables as ${NAME}, like the SMS gateway's.
    headers: Mapping[str, str] = Field(default_factory=dict)
    retries: int = Field(4, ge=0, le=10)  # tries after the first
    backoff: Duration = 30  # first wait, doubled at each retry (30s..8m: ~7.5 min in all)
    max_wait: Duration = 600  # longest wait honoured (Retry-After included)
    timeout: float = Field(10.0, gt=0, le=120)  # seconds per request

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s]+$", value):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for name in value:
            if not re.match(r"^[A-Za-z0-9-]{1,64}$", name):
                raise ValueError(f"'{name}' is not an HTTP header name")
            if name.lower().startswith("x-astreinte-") or name.lower() == "content-type":
                raise ValueError(f"header '{name}' is set by the service itself")
        return value

    @field_validator("events")
    @classmethod
    def _some_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"name at least one event ({', '.join(WEBHOOK_EVENTS)})")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _per_kind(self) -> WebhookConfig:
        given = [f for f in (self.url, self.url_env, self.url_file) if f is not None]
        if self.kind in ("slack", "teams") and self.url is not None:
            raise ValueError(
                f"a {self.kind} incoming-webhook URL is a secret: give url_env or url_file"
                " instead of url"
            )
        if len(given) != 1:
            raise ValueError("give exactly one of url, url_env, url_file")
        if self.kind == "generic" and not (self.secret_env or self.secret_file):
            raise ValueError("a generic webhook is signed: give secret_env or secret_file")
        if self.kind == "matrix":
            if not self.room or not re.match(r"^[!#][^\s:]+:[^\s]+$", self.room):
                raise ValueError("a matrix webhook needs room: '!roomid:server' or '#alias:server'")
            if not (self.token_env or self.token_file):
                raise ValueError("a matrix webhook needs token_env or token_file")
        return self

    def wants(self, event: str) -> bool:
        return event in self.events


class AlertingConfig(Frozen):
    smtp: SmtpConfig | None = None
    sms: SmsGatewayConfig | None = None
    voice: VoiceAlertConfig = VoiceAlertConfig()
    links: LinksConfig = LinksConfig()
    policies: Mapping[str, AlertPolicy] = Field(
        default_factory=lambda: {"missed_call": AlertPolicy(), "shift_start": AlertPolicy()}
    )
    default_channels: tuple[ChannelSpec, ...] = (
        ChannelSpec(via="sms"),
        ChannelSpec(via="voice", after="2m"),
    )
    channels: Mapping[str, tuple[ChannelSpec, ...]] = Field(default_factory=dict)  # per person
    missed_calls: MissedCallAlerts = MissedCallAlerts()
    shift_start: tuple[ShiftStartAlert, ...] = ()
    webhooks: Mapping[str, WebhookConfig] = Field(default_factory=dict)

    @field_validator("webhooks")
    @classmethod
    def _webhook_names(cls, value: Mapping[str, WebhookConfig]) -> Mapping[str, WebhookConfig]:
        for name in value:
            if not _NAME_RE.match(name):
                raise ValueError(f"webhook name '{name}': use a-z, 0-9, '-' or '_' (max 40)")
        return value

    @model_validator(mode="after")
    def _policies_exist(self) -> AlertingConfig:
        wanted = [self.missed_calls.policy, *(s.policy for s in self.shift_start)]
        for name in wanted:
            if name not in self.policies:
                raise ValueError(
                    f"unknown alert policy '{name}' (have: {', '.join(self.policies)})"
                )
        return self

    def policy(self, name: str) -> AlertPolicy:
        return self.policies.get(name) or AlertPolicy()

    def uses_voice(self) -> bool:
        """Whether some alert may be a phone call (its prompts must then be on the PBX)."""
        specs = [*self.default_channels, *(s for c in self.channels.values() for s in c)]
        return any(spec.via == "voice" for spec in specs)

    def channels_for(self, person_id: str) -> tuple[ChannelSpec, ...]:
        chosen = self.channels.get(person_id, self.default_channels)
        return tuple(sorted(chosen, key=lambda c: c.after))
