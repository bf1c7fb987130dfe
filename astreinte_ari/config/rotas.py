"""Rota models: rotations and their layers, restrictions, overrides, swaps,
holiday and closure rules, the team's holiday calendar and labour-law settings.

The shorthand `primary: {every: week, handoff: "fri 18:00", start: ..., people: [...]}`
is a one-layer rota; `primary: {layers: [...]}` stacks several (the later layer
wins where it is active). Field names mirror the YAML so that the loader can
point at the line of any error.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from astreinte_ari.config import rotaspec, timespec
from astreinte_ari.config.fields import DaySpec, Frozen, Ranges
from astreinte_ari.public_holidays import country_holidays

RuleLevel = Literal["off", "warning", "error"]
SUBDIV_ALIASES = {"alsace-moselle": "57", "alsace": "6AE", "moselle": "57"}


class Restriction(Frozen):
    """When a layer is active; outside these windows the layer has nobody."""

    days: DaySpec | None = None  # "mon-fri"
    hours: str | None = None  # "18:00-08:00": may cross midnight, starts on each day of `days`
    windows: tuple[str, ...] = ()  # "fri 18:00 - mon 08:00"
    weeks: Literal["all", "even", "odd"] = "all"  # weeks counted from the rotation start

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, str):
            if data not in rotaspec.PRESETS:
                raise ValueError(
                    f"'{data}' is not a known restriction ({', '.join(rotaspec.PRESETS)}); "
                    "or give days/hours/windows/weeks"
                )
            return rotaspec.PRESETS[data]
        return data

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            timespec.parse_wrapping_range(value)
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            rotaspec.parse_window(window)
        return value

    def compiled(self) -> tuple[rotaspec.Window, ...]:
        return rotaspec.build_windows(self.days, self.hours, self.windows)


class Layer(Frozen):
    """One rotation: people take turns at each handoff, from `start` on."""

    every: str = "week"
    handoff: str | None = None
    handoffs: tuple[str, ...] = ()  # custom: several handoffs per cycle
    start: date
    people: tuple[str, ...] = Field(min_length=1)
    only: Restriction | None = None
    name: str | None = None

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: object) -> object:
        rotaspec.parse_every(value)  # type: ignore[arg-type]
        return str(value)

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str | None) -> str | None:
        if value is not None:
            timespec.parse_handoff(value)
        return value

    @model_validator(mode="after")
    def _cycle(self) -> Layer:
        self.cycle()  # raises ValueError with the problem
        if self.handoff is not None:
            weekday = timespec.parse_handoff(self.handoff).weekday
        elif self.handoffs and not self.handoffs[0].strip().lower().startswith("day"):
            weekday = timespec.parse_handoff(self.handoffs[0]).weekday
        else:
            weekday = None
        if weekday is not None and self.start.weekday() != weekday:
            raise ValueError(
                f"start {self.start} is a {timespec.WEEKDAYS[self.start.weekday()]} "
                f"but the handoff is on {timespec.WEEKDAYS[weekday]}"
            )
        return self

    def cycle(self) -> rotaspec.Cycle:
        return rotaspec.build_cycle(self.every, self.handoff, self.handoffs, self.start.weekday())

    @property
    def length_days(self) -> int:
        return self.cycle().days

    @property
    def handoff_spec(self) -> timespec.Handoff:
        return timespec.parse_handoff(self.handoff or self.handoffs[0])


class Rotation(Frozen):
    """A rota: either one rotation written inline, or `layers`."""

    every: str | None = None
    handoff: str | None = None
    handoffs: tuple[str, ...] = ()
    start: date | None = None
    people: tuple[str, ...] = ()
    only: Restriction | None = None
    layers: tuple[Layer, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> Rotation:
        inline = self.start is not None or self.people or self.handoff or self.handoffs
        if self.layers and inline:
            raise ValueError("give either 'layers' or one inline rotation, not both")
        if not self.layers:
            missing = [k for k in ("start", "people") if not getattr(self, k)]
            if missing:
                raise ValueError(f"missing required field(s): {', '.join(missing)}")
            self.all_layers()  # validate the inline layer
        return self

    def all_layers(self) -> tuple[Layer, ...]:
        return self._layers

    @cached_property
    def _layers(self) -> tuple[Layer, ...]:
        if self.layers:
            return self.layers
        return (
            Layer(
                every=self.every or "week",
                handoff=self.handoff,
                handoffs=self.handoffs,
                start=self.start,  # type: ignore[arg-type]
                people=self.people,
                only=self.only,
            ),
        )

    @property
    def all_people(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for layer in self.all_layers() for p in layer.people))


class Override(Frozen):
    """`person` holds `rota` over [from, to) wherever the rota has someone."""

    rota: str
    person: str
    from_: datetime = Field(alias="from")  # local time of the team's zone when naive
    to: datetime
    reason: str | None = None
    requested_by: str | None = None

    @model_validator(mode="after")
    def _order(self) -> Override:
        if (self.from_.tzinfo is None) != (self.to.tzinfo is None):
            raise ValueError("give 'from' and 'to' both in local time (without an offset)")
        if self.to <= self.from_:
            raise ValueError("'to' must be after 'from'")
        return self


def _date_or_datetime(value: object) -> object:
    # "2026-12-18" names a day, "2026-12-18 18:00" an instant; pydantic would
    # read both as datetimes.
    if isinstance(value, str) and len(value.strip()) == 10:
        return date.fromisoformat(value.strip())
    return value


ShiftRef = Annotated[datetime | date, BeforeValidator(_date_or_datetime)]


class Swap(Frozen):
    """Two rotation shifts of `rota` exchange their holders.

    Each side is a local date (the shift that starts that day) or a local
    "YYYY-MM-DD HH:MM" (the shift on at that instant)."""

    rota: str
    first: ShiftRef
    second: ShiftRef
    reason: str | None = None
    requested_by: str | None = None


class ChangeRules(Frozen):
    """Self-service swaps and covers (schedule/changes.py, docs/rotas.md)."""

    # A swap the colleague agreed to still waits for a manager; false: consent suffices.
    manager_approval: bool = True
    # A manager may approve their own request (a team of one manager); off by default.
    self_approval: bool = False


class HolidayRule(Frozen):
    """Who holds a rota (or every rota) on public holidays or closure days,
    whole local days; wins over overrides and rotations."""

    rota: str | None = None  # None: every rota of the team
    person: str
    public_holidays: bool = False  # the team's `holidays` calendar
    dates: tuple[date, ...] = ()
    from_: date | None = Field(None, alias="from")  # closure, first day
    to: date | None = None  # closure, last day (included)
    reason: str | None = None
    requested_by: str | None = None

    @model_validator(mode="after")
    def _some_days(self) -> HolidayRule:
        if (self.from_ is None) != (self.to is None):
            raise ValueError("a closure needs both 'from' and 'to' (first and last day)")
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError("'to' (last day) is before 'from'")
        if not (self.public_holidays or self.dates or self.from_):
            raise ValueError("say which days: public_holidays: true, dates: [...] or from/to")
        return self


class HolidayCalendar(Frozen):
    country: str | None = "FR"  # null: no public holidays
    subdiv: str | None = None  # "alsace-moselle" (or "57", "6AE") adds Good Friday, 26 Dec

    @field_validator("subdiv")
    @classmethod
    def _alias(cls, value: str | None) -> str | None:
        return None if value is None else SUBDIV_ALIASES.get(value.lower(), value)

    @model_validator(mode="after")
    def _known(self) -> HolidayCalendar:
        if self.country is None:
            if self.subdiv is not None:
                raise ValueError("subdiv needs a country")
            return self
        try:
            country_holidays(self.country, subdiv=self.subdiv)
        except NotImplementedError as exc:
            raise ValueError(f"public holidays: {exc}") from None
        return self


class RestRule(Frozen):
    hours: float = Field(gt=0, le=168)
    level: RuleLevel = "warning"


class CountRule(Frozen):
    count: int | None = Field(None, ge=1)  # None: off
    level: RuleLevel = "warning"


class NoticeRule(Frozen):
    days: int = Field(15, ge=0, le=365)
    level: RuleLevel = "warning"


class LabourRules(Frozen):
    """French labour-law checks of a team's programme (`astreinte check`)."""

    daily_rest: RestRule = RestRule(hours=11)
    weekly_rest: RestRule = RestRule(hours=35)
    max_periods_per_month: CountRule = CountRule()
    notice: NoticeRule = NoticeRule()
    double_booking: RuleLevel = "warning"
    coverage: RuleLevel = "warning"
    # Regular working time (counted as work with interventions), e.g. mon-fri: "08:00-18:00".
    work_hours: Mapping[DaySpec, Ranges] = Field(default_factory=dict)
    horizon_days: int = Field(90, ge=1, le=3660)  # how far ahead the checks look

    def weekly_work(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        days: list[tuple[tuple[int, int], ...]] = [()] * 7
        for spec, ranges in self.work_hours.items():
            for day in timespec.parse_day_spec(spec):
                days[day] = ranges
        return tuple(days)
