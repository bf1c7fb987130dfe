"""The web planning (`web:`): its own listener, sign-in by one-time link, roles.

docs/web.md. People sign in with the email or mobile the YAML gives them; the
link goes out through the alerting notifiers (alerting.smtp / alerting.sms).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from astreinte_ari.config.fields import LISTEN_PATTERN, Listener


class WebConfig(Listener):
    listen: str = Field("127.0.0.1:8092", pattern=LISTEN_PATTERN)
    # As people's browsers reach it (a reverse proxy's https URL in production); its
    # path is served too, so a proxy may forward or strip it.
    public_url: str = "http://127.0.0.1:8092"
    session_hours: float = Field(12, gt=0, le=24 * 31)
    login_link_minutes: int = Field(15, ge=1, le=24 * 60)
    admins: tuple[str, ...] = ()  # person ids: see and change everything
    auditors: tuple[str, ...] = ()  # person ids: read-only, every team

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"'{value}' is not a URL like https://astreinte.example.fr")
        if parts.query or parts.fragment:
            raise ValueError("public_url takes no ?query or #fragment")
        return value.rstrip("/")

    @property
    def path_prefix(self) -> str:
        """The public URL's path ("" or "/astreinte"), without the final slash."""
        return urlsplit(self.public_url).path.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")
