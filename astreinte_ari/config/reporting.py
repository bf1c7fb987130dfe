"""Configuration for the audit trail's edges: export signing, retention, compensation.

Three optional top-level blocks of the YAML (all have defaults):

    audit:        {export_key_file: /etc/astreinte/audit-export.key}
    retention:    {recordings_days: 90, call_recordings_days: 183, caller_id_days: 365}
    compensation: {currency: EUR, per_period: 50, on_call_hourly: {...}, ...}
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pydantic import Field, field_validator

from astreinte_ari.config.alerting import Duration
from astreinte_ari.config.fields import Frozen
from astreinte_ari.public_holidays import country_holidays

_RANGE_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class AuditPublicKey(Frozen):
    """A checkpoint verification key and when it signed (key rotation)."""

    file: Path
    valid_from: date | None = None
    valid_until: date | None = None  # inclusive


class AuditConfig(Frozen):
    # HMAC key for `astreinte audit export` manifests (>= 16 bytes); none: unsigned.
    export_key_file: Path | None = None
    # Ed25519 key the service signs checkpoints of the chain with (astreinte audit
    # keygen); readable by the service user only, never in the database.
    signing_key_file: Path | None = None
    # Keys that signed earlier checkpoints (after a rotation); the current key's
    # public part is always accepted.
    public_keys: tuple[AuditPublicKey, ...] = ()
    checkpoint_every: Duration = 900
    # A copy of every checkpoint outside the database (another disk or host);
    # the service's log (journald/syslog) always gets one.
    witness_file: Path | None = None


class RetentionConfig(Frozen):
    # Voicemail messages. None: keep forever. Counted from the call's start.
    recordings_days: int | None = Field(None, ge=1, le=36500)
    # Recorded conversations (record_calls): 6 months by default (CNIL: at most 6
    # months for recordings); never "forever".
    call_recordings_days: int = Field(183, ge=1, le=36500)
    caller_id_days: int | None = Field(None, ge=1, le=36500)


class OnCallRates(Frozen):
    """Amount per hour of on-call duty (availability), by kind of day."""

    weekday: float = Field(0.0, ge=0)
    weekend: float = Field(0.0, ge=0)
    holiday: float = Field(0.0, ge=0)


class Majorations(Frozen):
    """Extra fraction of the intervention rate (0.5 = +50 %); the largest applicable wins."""

    night: float = Field(0.0, ge=0, le=10)
    weekend: float = Field(0.0, ge=0, le=10)
    holiday: float = Field(0.0, ge=0, le=10)


class CompensationConfig(Frozen):
    currency: str = "EUR"
    per_period: float = Field(0.0, ge=0)  # flat amount per on-call period (shift)
    on_call_hourly: OnCallRates = OnCallRates()
    intervention_hourly: float = Field(0.0, ge=0)  # intervention time is paid as work
    majorations: Majorations = Majorations()
    night: str = "22:00-06:00"  # local time window for the night majoration
    holidays: str | None = None  # country code for public holidays, e.g. FR
    holiday_subdiv: str | None = None
    rest_hours: float = Field(11.0, ge=0, le=48)  # warn when rest between interventions is shorter

    @field_validator("night")
    @classmethod
    def _night(cls, value: str) -> str:
        if not _RANGE_RE.match(value):
            raise ValueError(f"'{value}' is not a time range like 22:00-06:00")
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                country_holidays(value)
            except NotImplementedError as exc:
                raise ValueError(f"public holidays: {exc}") from None
        return value

    def night_minutes(self) -> tuple[int, int]:
        """(start, end) minutes after midnight; end < start means across midnight."""
        m = _RANGE_RE.match(self.night)
        assert m is not None  # validated above
        return int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
