"""Reusable field types and checks for the configuration models."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from astreinte_ari.config import timespec

E164_RE = re.compile(r"^\+\d{6,15}$")
MIN_RING_S, MAX_RING_S = 5, 30  # SIP timer B fires at 32 s: stay clearly below


def _check_phone(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('phone numbers must be quoted in the YAML, e.g. "+33612345678"')
    if isinstance(value, str):
        compact = value.replace(" ", "")  # "+33 6 12 34 56 78" is how people write them
        if not E164_RE.match(compact):
            raise ValueError(f"'{value}' is not an international number like +33612345678")
        return compact
    return value


# A PJSIP endpoint's name as pjsip.conf spells it ([desk-101]): it goes into a dial
# string and into the dialplan fallback's Dial(), so no '/', '@', ',' or spaces.
SIP_ENDPOINT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SIP_PREFIX = "sip:"


def check_sip_endpoint(value: object) -> object:
    """`desk-101`, `sip:desk-101` or an extension number (101) -> "desk-101"."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `sip: 101`: YAML reads a bare extension as a number
    if not isinstance(value, str):
        return value
    name = value.strip()
    if name.lower().startswith(SIP_PREFIX):
        name = name[len(SIP_PREFIX) :]
    if "/" in name or "@" in name:
        raise ValueError(
            f"'{value}': write the PJSIP endpoint's name only, e.g. desk-101 "
            "(not PJSIP/desk-101 or desk-101@host)"
        )
    if not SIP_ENDPOINT_RE.match(name):
        raise ValueError(
            f"'{value}' is not a SIP endpoint name like desk-101 "
            "(letters, digits, '.', '_' and '-', as in pjsip.conf)"
        )
    return name


def _check_contact(value: object) -> object:
    """A number dialled through the trunk, or `sip:<endpoint>` on this PBX."""
    if not isinstance(value, str):
        return _check_phone(value)  # e.g. an unquoted number: "must be quoted"
    if value.strip().lower().startswith(SIP_PREFIX):
        return f"{SIP_PREFIX}{check_sip_endpoint(value)}"
    try:
        return _check_phone(value)
    except ValueError:
        raise ValueError(
            f"'{value}' is neither an international number like +33612345678 "
            "nor a SIP endpoint like sip:desk-101"
        ) from None


def sip_endpoint_of(contact: str) -> str | None:
    """The endpoint of a `sip:<endpoint>` contact; None for a phone number."""
    return contact[len(SIP_PREFIX) :] if contact.startswith(SIP_PREFIX) else None


def _check_ring_timeout(value: int) -> int:
    if not MIN_RING_S <= value <= MAX_RING_S:
        raise ValueError(
            f"ring timeout {value} s is outside {MIN_RING_S}..{MAX_RING_S} s "
            "(the operator gives up at 32 s)"
        )
    return value


def check_sound(value: str) -> str:
    # Sound names end up in ARI media URIs: no paths escaping the sounds dir.
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", value):
        raise ValueError(f"'{value}' is not a sound name (letters, digits, - and _ only)")
    return value


def _check_day_spec(value: str) -> str:
    timespec.parse_day_spec(value)
    return value


def _parse_ranges(value: object) -> object:
    return timespec.parse_ranges(value) if isinstance(value, str) else value


Phone = Annotated[str, BeforeValidator(_check_phone)]
SipEndpoint = Annotated[str, BeforeValidator(check_sip_endpoint)]
# Where a call can be sent: "+33612345678" (through the trunk) or "sip:desk-101".
Contact = Annotated[str, BeforeValidator(_check_contact)]
contact_of = _check_contact  # the same check where a Contact is one choice among others
RingTimeout = Annotated[int, AfterValidator(_check_ring_timeout)]
SoundName = Annotated[str, AfterValidator(check_sound)]
DaySpec = Annotated[str, AfterValidator(_check_day_spec)]
Ranges = Annotated[tuple[tuple[int, int], ...], BeforeValidator(_parse_ranges)]
FinalChoice = Literal["voicemail", "hangup"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


LISTEN_PATTERN = r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$"  # host:port, [v6]:port


class Listener(Frozen):
    """A section with its own HTTP listener: `listen: "host:port"`."""

    listen: str

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}' (use a name like Europe/Paris)") from None
    return value
