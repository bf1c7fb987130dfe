"""Validated, immutable configuration objects (pydantic v2, frozen).

Shape mirrors the YAML so that validation errors map back to YAML lines.
Checks that need the whole document (unknown rota, number not allowed by the
trunk...) live in references.py so that the loader can locate each of them.
Line models live in lines.py, teams and people in teams.py, field types in
fields.py; the public names are re-exported here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from astreinte_ari import resources
from astreinte_ari.config import secrets
from astreinte_ari.config.alerting import AlertingConfig
from astreinte_ari.config.cluster import ClusterConfig, node_name
from astreinte_ari.config.fallback import FallbackConfig
from astreinte_ari.config.fields import (
    E164_RE,
    LISTEN_PATTERN,
    Frozen,
    Listener,
    Phone,
    check_timezone,
    sip_endpoint_of,
)
from astreinte_ari.config.lines import (
    BusinessForward,
    BusinessHours,
    HopConfig,
    LineConfig,
    Route,
)
from astreinte_ari.config.pbx import PbxConfig
from astreinte_ari.config.reporting import AuditConfig, CompensationConfig, RetentionConfig
from astreinte_ari.config.rotas import Override, Rotation
from astreinte_ari.config.teams import Person, TeamConfig
from astreinte_ari.config.web import WebConfig

__all__ = [
    "AppConfig",
    "AriConfig",
    "BusinessForward",
    "BusinessHours",
    "HopConfig",
    "LineConfig",
    "NumberNotAllowed",
    "Override",
    "Person",
    "Rotation",
    "Route",
    "TeamConfig",
    "TrunkConfig",
]

REPO_SOUNDS_DIR = resources.sounds_dir()  # the installed package's copy, or the checkout's


class NumberNotAllowed(ValueError):
    """A number that is not E.164 or not covered by the trunk's allowed prefixes."""


class AriConfig(Frozen):
    url: str
    username: str
    app: str = "astreinte"
    password_file: Path | None = None
    password_env: str = "ASTREINTE_ARI_PASSWORD"
    # At start, how long to wait for ARI before giving up with a non-zero exit (the
    # supervisor restarts or alerts; calls meanwhile go to the dialplan fallback).
    start_timeout: int = Field(60, ge=1, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # An ARI login is PBX-admin: plain HTTP only over loopback.
        m = re.match(r"^(https?)://(\[[^\]]+\]|[^/:]+)(:\d+)?/?$", value)
        if not m:
            raise ValueError(f"'{value}' is not a URL like http://127.0.0.1:8088")
        if m.group(1) == "http" and m.group(2) not in ("127.0.0.1", "localhost", "[::1]"):
            raise ValueError("plain http:// is only allowed to localhost; use https://")
        return value.rstrip("/")


class DatabaseConfig(Frozen):
    url: str | None = None
    url_file: Path | None = None  # keeps a password out of the YAML


class StorageConfig(Frozen):
    recordings_dir: Path | None = None
    journal_dir: Path | None = None  # audit write-ahead journal (database outages)


class CelConfig(Frozen):
    """Asterisk's own channel records (CEL, written by cel_custom): the truth about
    calls that ended while the service was away. dialplan/cel_custom_astreinte.conf."""

    file: Path | None = None


class MetricsConfig(Listener):
    """Prometheus endpoint (GET /metrics); keep it on loopback or behind a proxy."""

    listen: str = Field("127.0.0.1:9464", pattern=LISTEN_PATTERN)


class SoundsConfig(Frozen):
    dir: Path | None = None


class TrunkConfig(Frozen):
    dial: str
    caller_id: Phone
    allowed_prefixes: tuple[str, ...] = Field(min_length=1)

    @field_validator("dial")
    @classmethod
    def _dial(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError('must contain {number}, e.g. "PJSIP/{number}@operator"')
        return value

    @field_validator("allowed_prefixes")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            if not re.fullmatch(r"\+\d{1,14}", prefix):
                raise ValueError(f"prefix '{prefix}' must look like +336")
        return value

    def is_allowed(self, number: str) -> bool:
        return bool(E164_RE.match(number)) and number.startswith(self.allowed_prefixes)

    def dial_string(self, number: str) -> str:
        """The Asterisk endpoint for number; refuses anything the allow-list does not cover."""
        if not self.is_allowed(number):
            raise NumberNotAllowed(
                f"{number!r} is not allowed by the trunk ({', '.join(self.allowed_prefixes)})"
            )
        return self.dial.replace("{number}", number)


class VoicemailDefaults(Frozen):
    max_duration: int = Field(180, ge=10, le=3600)
    max_silence: int = Field(6, ge=1, le=60)


class CallerRateLimit(Frozen):
    """Repeated calls from one number: after max_calls within the window, the
    caller gets the announcement and voicemail instead of a new cascade, except
    one call every still_ring_every_minutes that still rings `still_ring` (a real
    emergency makes people call again and again too). routing/ratelimit.py."""

    max_calls: int = Field(5, ge=1, le=1000)
    window_minutes: int = Field(10, ge=1, le=1440)
    include_anonymous: bool = False  # withheld numbers all look alike: off by default
    # null: past the limit nobody is ever rung (voicemail only)
    still_ring_every_minutes: int | None = Field(3, ge=1, le=1440)
    still_ring: Literal["first_hop", "last_hop", "all_hops"] = "first_hop"

    @model_validator(mode="after")
    def _still_ring_within_window(self) -> CallerRateLimit:
        every = self.still_ring_every_minutes
        if every is not None and every > self.window_minutes:
            raise ValueError(
                f"still_ring_every_minutes ({every}) longer than window_minutes "
                f"({self.window_minutes}): a caller past the limit would wait longer for a "
                "human than the limit itself lasts; shorten it, or null to never ring"
            )
        return self


class Defaults(Frozen):
    accept_timeout: int = Field(10, ge=3, le=60)
    voicemail: VoicemailDefaults = VoicemailDefaults()
    caller_rate_limit: CallerRateLimit | None = CallerRateLimit()  # null disables it
    # Calls in announcement / ringing at once; more wait on hold ("please hold")
    # instead of loading the PBX during a burst (an outage makes everyone call).
    max_parallel_cascades: int | None = Field(100, ge=1, le=10000)


# Where an installed service keeps its files (scripts/astreinte.service: StateDirectory,
# ReadWritePaths); used when the configuration file lives under /etc.
FHS_STATE_DIR = Path("/var/lib/astreinte")
FHS_FALLBACK_SPOOL_DIR = Path("/var/spool/astreinte/fallback")


def _under_etc(directory: Path) -> bool:
    return directory.is_relative_to("/etc")


class AppConfig(Frozen):
    source_path: Path
    timezone: str
    # Language of the documents for people (report --format html, statements) and of
    # shift-start texts when no line of the team says otherwise: fr or en.
    language: Literal["fr", "en"] = "fr"
    ari: AriConfig
    pbx: PbxConfig = PbxConfig()  # where Asterisk takes SIP (doctor, /readyz): config/pbx.py
    database: DatabaseConfig = DatabaseConfig()
    storage: StorageConfig = StorageConfig()
    sounds: SoundsConfig = SoundsConfig()
    trunk: TrunkConfig
    defaults: Defaults = Defaults()
    fallback: FallbackConfig = FallbackConfig()
    cel: CelConfig = CelConfig()
    lines: Mapping[str, LineConfig]
    teams: Mapping[str, TeamConfig]
    alerting: AlertingConfig | None = None  # alerts and shift starts: docs/alerts.md
    metrics: MetricsConfig | None = None  # Prometheus endpoint, off unless configured
    # audit export signing, retention, compensation: docs/audit-and-reports.md
    audit: AuditConfig = AuditConfig()
    retention: RetentionConfig = RetentionConfig()
    compensation: CompensationConfig = CompensationConfig()
    cluster: ClusterConfig = ClusterConfig()  # several nodes, one database: docs/cluster.md
    # How often the service reads changes approved by another process (docs/rotas.md).
    changes_refresh_seconds: float = Field(5, gt=0, le=3600)
    web: WebConfig | None = None  # the planning in a browser, off unless configured: docs/web.md

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("lines")
    @classmethod
    def _dids(cls, value: Mapping[str, LineConfig]) -> Mapping[str, LineConfig]:
        for did in value:
            if not re.fullmatch(r"\+?[0-9A-Za-z_-]{1,40}", did):
                raise ValueError(f"line key '{did}' is not a number like \"+33180000000\"")
        return value

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        from astreinte_ari.config.references import prepare_raw, reference_issues

        data = prepare_raw(data)
        # The loader checks references itself, to give each problem its own line.
        if not (info.context or {}).get("references_checked"):
            problems = reference_issues(data)
            if problems:
                raise ValueError("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems))
        return data

    def sip_endpoints(self) -> frozenset[str]:
        """Every SIP endpoint this configuration names (people's `sip`, business
        forwards to `sip:...`): the only endpoints the service may dial."""
        names = {p.sip for team in self.teams.values() for p in team.people.values() if p.sip}
        for line in self.lines.values():
            if line.in_business_hours is not None:
                endpoint = sip_endpoint_of(line.in_business_hours.forward)
                if endpoint is not None:
                    names.add(endpoint)
            if line.test_call is not None and line.test_call.sip_endpoint is not None:
                names.add(line.test_call.sip_endpoint)  # the test call's auto-answer phone
        return frozenset(names)

    @property
    def base_dir(self) -> Path:
        return self.source_path.resolve().parent

    @property
    def sounds_dir(self) -> Path:
        """Sounds directory as Asterisk sees it; default: the repository's sounds/."""
        return self.sounds.dir or REPO_SOUNDS_DIR

    @property
    def _state_dir(self) -> Path:
        """Default home of the service's own files. A configuration under /etc is an
        installed service: its state goes where the FHS and the systemd unit's
        ReadWritePaths put it (<config dir>/../var would be /etc/var, read-only
        under ProtectSystem=strict); elsewhere (a checkout, the demo) beside it."""
        return FHS_STATE_DIR if _under_etc(self.base_dir) else self.base_dir.parent / "var"

    @property
    def recordings_dir(self) -> Path:
        """Voicemail files kept by the service; default: /var/lib/astreinte/recordings
        for a configuration under /etc, else <config dir>/../var/recordings."""
        return self.storage.recordings_dir or (self._state_dir / "recordings")

    @property
    def journal_dir(self) -> Path:
        """Audit write-ahead journal; default: <recordings dir>/../journal."""
        return self.storage.journal_dir or (self.recordings_dir.parent / "journal")

    @property
    def fallback_spool_dir(self) -> Path:
        """Dialplan-fallback call records; default: /var/spool/astreinte/fallback for a
        configuration under /etc, else <config dir>/../var/fallback."""
        if self.fallback.spool_dir is not None:
            return self.fallback.spool_dir
        if _under_etc(self.base_dir):
            return FHS_FALLBACK_SPOOL_DIR
        return self.base_dir.parent / "var" / "fallback"

    @property
    def accept_timeout_s(self) -> int:
        return self.defaults.accept_timeout

    @property
    def voicemail_max_duration_s(self) -> int:
        return self.defaults.voicemail.max_duration

    @property
    def voicemail_max_silence_s(self) -> int:
        return self.defaults.voicemail.max_silence

    def database_url(self) -> str:
        """Env ASTREINTE_DATABASE_URL, then database.url_file, then database.url, then
        SQLite in the state directory (/var/lib/astreinte for a configuration under
        /etc, else <config dir>/../var/)."""
        from_env = os.environ.get("ASTREINTE_DATABASE_URL", "").strip()
        if from_env:
            return from_env
        if self.database.url_file is not None:
            return secrets.read_secret_file(self.database.url_file)
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self._state_dir / 'astreinte.db'}"

    def exposed_secrets(self) -> list[secrets.ExposedSecret]:
        """Secret files of this configuration that any local user could read."""
        return secrets.exposed_secrets(
            (("ari.password_file", self.ari.password_file),
             ("database.url_file", self.database.url_file))
        )  # fmt: skip

    def node_name(self) -> str:
        """This node's name in cluster_nodes and calls.node (config/cluster.py)."""
        return node_name(self.cluster)

    def ari_password(self) -> str:
        """Env var named by ari.password_env, then ari.password_file."""
        return secrets.resolve_secret(
            self.ari.password_env, self.ari.password_file, what="ARI password"
        )
