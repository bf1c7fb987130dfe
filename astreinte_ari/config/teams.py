"""The `teams:` section: the people a cascade can ring, and each team's rotas,
overrides, swaps, holidays, labour rules and self-service changes (rotas.py holds
those models). Re-exported by model.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

from astreinte_ari.config.fields import Frozen, Phone, SipEndpoint, check_timezone
from astreinte_ari.config.rotas import (
    ChangeRules,
    HolidayCalendar,
    HolidayRule,
    LabourRules,
    Override,
    Rotation,
    Swap,
)

__all__ = ["Person", "TeamConfig"]


class Person(Frozen):
    """Someone (or some post) the cascade can ring.

    `mobile` is dialled through the trunk; `sip` names an endpoint of this PBX (a
    desk phone, PJSIP/<sip>). `ring` says which of the two a hop rings: by default
    the mobile when there is one, else the SIP endpoint. Alerts by SMS or voice
    call always go to the mobile."""

    name: str
    mobile: Phone | None = None
    sip: SipEndpoint | None = None
    ring: Literal["mobile", "sip"] | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if self.mobile is None and self.sip is None:
            raise ValueError(
                'a person needs a mobile ("+33612345678") or a SIP endpoint (sip: desk-101)'
            )
        if self.ring == "sip" and self.sip is None:
            raise ValueError("ring: sip needs the person's SIP endpoint, e.g. sip: desk-101")
        if self.ring == "mobile" and self.mobile is None:
            raise ValueError('ring: mobile needs the person\'s mobile, e.g. mobile: "+33612345678"')
        return self

    @property
    def rings(self) -> Literal["mobile", "sip"]:
        """What a hop to this person rings."""
        if self.ring is not None:
            return self.ring
        return "mobile" if self.mobile is not None else "sip"


class TeamConfig(Frozen):
    # Filled from the top-level timezone by AppConfig; set it for a team abroad.
    timezone: str | None = None
    people: Mapping[str, Person]
    rotas: Mapping[str, Rotation] = Field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    swaps: tuple[Swap, ...] = ()  # rotas.py: exchanges of two rotation shifts
    holiday_rules: tuple[HolidayRule, ...] = ()  # who holds on holidays / closure days
    holidays: HolidayCalendar = HolidayCalendar()  # public holidays (France by default)
    labour: LabourRules = LabourRules()  # labour-law checks of `astreinte check`
    # Who approves self-service changes (`astreinte rota approve`, the web pages).
    managers: tuple[str, ...] = ()
    changes: ChangeRules = ChangeRules()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)
