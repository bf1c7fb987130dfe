"""Models of one telephone line: calendar, business forward, call cascades."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from astreinte_ari.config import timespec
from astreinte_ari.config.fields import (
    SIP_PREFIX,
    Contact,
    DaySpec,
    FinalChoice,
    Frozen,
    Phone,
    Ranges,
    RingTimeout,
    SoundName,
    check_sound,
    contact_of,
)
from astreinte_ari.public_holidays import country_holidays


class RingAllRota(Frozen):
    """A ring-all entry naming a rota: whoever is on call in it when the call comes."""

    rota: str


class HopConfig(Frozen):
    """One step of the cascade: a rota's on-call person, one person, or several
    people rung at once (`ring_all: [alice, bob, {rota: secondary}]`: the first to
    press 1 takes the call, the others' phones stop ringing)."""

    rota: str | None = None
    person: str | None = None
    ring_all: tuple[str | RingAllRota, ...] | None = None
    timeout: RingTimeout = 25
    label: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> HopConfig:
        given = [k for k in ("rota", "person", "ring_all") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a hop needs exactly one of 'rota', 'person' or 'ring_all'")
        if self.ring_all is not None and len(self.ring_all) < 2:
            raise ValueError("ring_all needs at least two entries (one: use person or rota)")
        return self

    def ring_all_people(self) -> tuple[str, ...]:
        return tuple(e for e in self.ring_all or () if isinstance(e, str))

    def ring_all_rotas(self) -> tuple[str, ...]:
        return tuple(e.rota for e in self.ring_all or () if isinstance(e, RingAllRota))

    def rotas(self) -> tuple[str, ...]:
        """Every rota this hop may ring (coverage, reports)."""
        return ((self.rota,) if self.rota is not None else ()) + self.ring_all_rotas()

    def people(self) -> tuple[str, ...]:
        """Every person this hop names directly."""
        return ((self.person,) if self.person is not None else ()) + self.ring_all_people()


class Route(Frozen):
    # None: the period's default announcement; `announcement: false` (stored ""): none.
    announcement: str | None = None
    hops: tuple[HopConfig, ...] = ()
    finally_: FinalChoice = Field("voicemail", alias="finally")

    @field_validator("announcement", mode="before")
    @classmethod
    def _no_announcement(cls, value: object) -> object:
        return "" if value is False else value

    @field_validator("announcement")
    @classmethod
    def _sound(cls, value: str | None) -> str | None:
        return check_sound(value) if value else value


class BusinessForward(Frozen):
    forward: Contact  # "+33180000001" through the trunk, or "sip:accueil" on this PBX
    timeout: RingTimeout = 30
    announcement: SoundName | None = None  # none unless configured
    finally_: FinalChoice = Field("voicemail", alias="finally")


_BUSINESS_SETTINGS = ("hours", "holidays", "holiday_subdiv", "closures", "night")


class BusinessHours(Frozen):
    hours: Mapping[DaySpec, Ranges] = Field(default_factory=dict)
    holidays: str | None = "FR"  # country code for public holidays; null: none
    holiday_subdiv: str | None = None  # e.g. "57" (Moselle) or "alsace-moselle" for FR
    closures: tuple[date, ...] = ()  # company closure days, handled like holidays
    night: str | None = "20:00-08:00"  # null: no separate night period

    @model_validator(mode="before")
    @classmethod
    def _day_keys(cls, data: Any) -> Any:
        # Ops write `mon-fri: "08:00-18:00"` directly; gather those keys under `hours`.
        if not isinstance(data, Mapping):
            return data
        hours = dict(data.get("hours") or {})
        rest = {}
        for key, value in data.items():
            if key in _BUSINESS_SETTINGS:
                rest[key] = value
            else:
                hours[key] = value
        return {**rest, "hours": hours}

    @field_validator("holiday_subdiv")
    @classmethod
    def _subdiv(cls, value: str | None) -> str | None:
        # Alsace-Moselle keeps Good Friday and St Stephen's Day (local law).
        aliases = {"alsace-moselle": "57", "alsace": "67", "moselle": "57"}
        return aliases.get(value.strip().lower(), value) if value else value

    @field_validator("night")
    @classmethod
    def _night(cls, value: str | None) -> str | None:
        if value is not None:
            timespec.parse_wrapping_range(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> BusinessHours:
        seen: dict[int, str] = {}
        for spec in self.hours:
            for day in timespec.parse_day_spec(spec):
                if day in seen:
                    raise ValueError(
                        f"{timespec.WEEKDAYS[day]} is covered by both '{seen[day]}' and '{spec}'"
                    )
                seen[day] = spec
        if self.holidays is not None:
            try:
                country_holidays(self.holidays, subdiv=self.holiday_subdiv)
            except NotImplementedError as exc:
                raise ValueError(f"public holidays: {exc}") from None
        elif self.holiday_subdiv is not None:
            raise ValueError("holiday_subdiv needs holidays (a country code)")
        return self

    def weekly(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        """Open ranges (minutes since midnight) for each weekday, Monday first."""
        days: list[tuple[tuple[int, int], ...]] = [()] * 7
        for spec, ranges in self.hours.items():
            for day in timespec.parse_day_spec(spec):
                days[day] = ranges
        return tuple(days)

    @property
    def night_range(self) -> tuple[int, int] | None:
        return None if self.night is None else timespec.parse_wrapping_range(self.night)


BUILTIN_TEST_ENDPOINT = "builtin"  # dialplan/: [astreinte-testcall] answers and presses 1


class LineTestCall(Frozen):
    """The line's scheduled test call: the service calls the line itself through the
    PBX and checks the whole path up to a bridge with a test endpoint, never a person."""

    at: tuple[str, ...]  # local times ("03:30") in the configuration's time zone
    # "builtin" (the dialplan's auto-answer, no device needed), "sip:<endpoint>" or a
    # number through the trunk: something that answers and presses 1 by itself.
    endpoint: str = BUILTIN_TEST_ENDPOINT
    timeout: int = Field(45, ge=10, le=300)  # seconds from the start until bridged
    ring_timeout: RingTimeout = 15  # how long the test endpoint may ring
    alert: tuple[str, ...]  # people of the line's team told when it fails
    policy: str = "missed_call"  # alerting policy (repeats, escalation) of the failure

    @field_validator("at", mode="before")
    @classmethod
    def _times(cls, value: object) -> object:
        times = (value,) if isinstance(value, str) else value
        if isinstance(times, list | tuple):
            if not times:
                raise ValueError('give at least one time, like ["03:30"]')
            for text in times:
                timespec.parse_hhmm(str(text))
        return times

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, value: object) -> object:
        if value == BUILTIN_TEST_ENDPOINT:
            return value
        try:
            return contact_of(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, or {BUILTIN_TEST_ENDPOINT!r}") from None

    @field_validator("alert")
    @classmethod
    def _someone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one person to alert when the test call fails")
        return value

    @property
    def sip_endpoint(self) -> str | None:
        return self.endpoint[len(SIP_PREFIX) :] if self.endpoint.startswith(SIP_PREFIX) else None

    def minutes(self) -> tuple[int, ...]:
        """The times of day of the test calls, in minutes since local midnight."""
        return tuple(sorted({timespec.parse_hhmm(t) for t in self.at}))


DTMF_KEYS = "0123456789*#"


class MenuChoice(Frozen):
    """One key of a line's menu: where the call goes when the caller presses it."""

    label: str = Field(min_length=1, max_length=60)  # said in the trail, e.g. "Chauffage"
    line: str  # another entry of `lines:` (checked in references.py)


class LineMenu(Frozen):
    """A short menu before the cascade ("for heating press 1, for IT press 2"): each
    key sends the call to another line's cascade; no key or a wrong one: `default`."""

    prompt: SoundName  # sounds/<language>/<prompt>: ops record the choices
    timeout: int = Field(6, ge=1, le=30)  # seconds waited for a key after the prompt
    default: str
    choices: Mapping[str, MenuChoice]

    @field_validator("choices", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        if not isinstance(value, Mapping):
            return value
        if not value:
            raise ValueError(
                "a menu needs at least one choice, like '\"1\": {label: ..., line: ...}'"
            )
        for key in value:
            if str(key) not in DTMF_KEYS or len(str(key)) != 1:
                raise ValueError(f"menu key '{key}' is not one phone key (0-9, * or #)")
        return {str(k): v for k, v in value.items()}  # YAML reads `1:` as a number

    @field_validator("default", mode="before")
    @classmethod
    def _default_key(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _default_offered(self) -> LineMenu:
        if self.default not in self.choices:
            raise ValueError(
                f"menu default '{self.default}' is not one of its choices "
                f"({', '.join(self.choices)})"
            )
        return self


class CallerRoute(Frozen):
    """Callers whose number is listed go straight to another line's cascade (a VIP
    customer to the supervisor), before any menu."""

    label: str = Field(min_length=1, max_length=60)
    callers: tuple[Phone, ...] = Field(min_length=1)
    line: str  # another entry of `lines:` (checked in references.py)


class LineConfig(Frozen):
    name: str
    team: str
    language: Literal["fr", "en"] = "fr"
    line_prompt: SoundName | None = None
    recorded_notice: SoundName | None = None
    # Conversation recording (docs/recording.md): off unless asked for, and then only
    # with a stated purpose (CNIL: a recording needs one; callers are told first).
    record_calls: bool = False
    recording_purpose: str | None = Field(None, min_length=3, max_length=300)
    agent_can_stop_recording: bool = False
    recording_stop_keys: str = Field("*9", pattern=r"^[0-9*#]{1,4}$")
    accept_timeout: int | None = Field(None, ge=3, le=60)
    # Ring the first hop while the caller hears the announcement (off: after it,
    # as before; an upgrade does not change what agents' phones do on its own).
    early_dial: bool = False
    # With early dial, when an agent accepts during the announcement: `full` (the
    # caller hears all of it, the agent waits on hold) or `until_accepted` (cut short;
    # never the recorded-call notice).
    announcement_mode: Literal["full", "until_accepted"] = "full"
    # A person the service already has on another on-call call (ringing or talking):
    # skip (not rung, the cascade goes on at once), last (rung after every free hop),
    # or ring (rung in turn all the same: phones with call waiting).
    busy_agents: Literal["skip", "last", "ring"] = "skip"
    business_hours: BusinessHours | None = None  # absent: always after hours
    in_business_hours: BusinessForward | None = None
    after_hours: Route
    night: Route | None = None
    weekend: Route | None = None
    holiday: Route | None = None
    test_call: LineTestCall | None = None  # scheduled end-to-end test (docs/fallback...)
    menu: LineMenu | None = None  # a key chooses another line's cascade (docs/lines.md)
    caller_routes: tuple[CallerRoute, ...] = ()  # listed callers: another line, at once

    @model_validator(mode="after")
    def _business(self) -> LineConfig:
        if self.in_business_hours is not None and self.business_hours is None:
            raise ValueError("in_business_hours needs business_hours to say when they are")
        if self.record_calls and not (self.recording_purpose or "").strip():
            raise ValueError(
                "record_calls needs recording_purpose: why the conversations are recorded "
                "(a recording without a stated purpose is not lawful)"
            )
        return self
