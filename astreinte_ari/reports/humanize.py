"""Figures for people (reports, statements), in French or English. Pure: no I/O,
no process locale (the `locale` module is process-wide and often lacks fr_FR).

Conventions (docs/audit-and-reports.md, "Reading the documents"):
- durations use the unit symbols h, min and s in both languages, rounded to the
  second under an hour ("45 s", "2 min 05 s") and to the minute from one hour
  ("3 h 08 min"); unknown or negative: "—"; a number of hours (time on call)
  is always in hours and minutes ("0 h 15 min", "342 h 00 min");
- numbers: French "1 234,5" (no-break spaces between thousands), English "1,234.5";
- percentages: French "87,5 %", English "87.5%";
- dates in the configured time zone: French "26/05/2026 23:10", English
  "26 May 2026 23:10" (no day/month order to guess).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Literal, cast
from zoneinfo import ZoneInfo

from astreinte_ari.month_names import MONTHS

Lang = Literal["fr", "en"]
LANGUAGES: tuple[Lang, ...] = ("fr", "en")
DEFAULT_LANGUAGE: Lang = "fr"
DASH = "—"  # an unknown figure (no call answered, no talk time...)
_NBSP = "\u00a0"

_WEEKDAYS = {
    "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def language(value: str | None) -> Lang:
    """`value` if it is a supported language, else the default (French)."""
    return cast(Lang, value) if value in LANGUAGES else DEFAULT_LANGUAGE


def _known(seconds: float | None) -> bool:
    return seconds is not None and math.isfinite(seconds) and seconds >= 0


def duration(seconds: float | None, lang: Lang) -> str:
    """11286.0 -> "3 h 08 min"; 125 -> "2 min 05 s"; 59.4 -> "59 s"; None or < 0 -> "—".

    The same symbols in both languages (`lang` is accepted for symmetry)."""
    if seconds is None or not _known(seconds):
        return DASH
    whole = math.floor(seconds + 0.5)  # half up: 3599.5 s is an hour
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(math.floor(whole / 60 + 0.5), 60)
    return f"{hours} h {minutes:02d} min"


def hours(value: float | None, lang: Lang) -> str:
    """A number of hours (time on call, rest), always in hours and minutes, rounded to
    the minute: 342.0 -> "342 h 00 min", 0 -> "0 h 00 min", 0.25 -> "0 h 15 min"."""
    if value is None or not _known(value * 3600):
        return DASH
    whole, minutes = divmod(math.floor(value * 60 + 0.5), 60)
    return f"{whole} h {minutes:02d} min"


def number(value: float | None, lang: Lang, decimals: int = 0) -> str:
    """1234.5 -> "1 234,5" (fr, no-break spaces) or "1,234.5" (en)."""
    if value is None or not math.isfinite(value):
        return DASH
    text = f"{value:,.{decimals}f}"  # "1,234.5"
    if lang == "fr":
        text = text.replace(",", _NBSP).replace(".", ",")
    return text


def percent(ratio: float | None, lang: Lang) -> str:
    """0.875 -> "87,5 %" (fr) or "87.5%" (en); None (no call) -> "—"."""
    if ratio is None or not math.isfinite(ratio):
        return DASH
    figure = number(ratio * 100, lang, 1)
    return f"{figure} %" if lang == "fr" else f"{figure}%"


def money(amount: float, currency: str, lang: Lang) -> str:
    """847.0, "EUR" -> "847,00 EUR" (fr) or "847.00 EUR" (en)."""
    return f"{number(amount, lang, 2)} {currency}"


def day_text(day: date, lang: Lang) -> str:
    if lang == "fr":
        return f"{day:%d/%m/%Y}"
    return f"{day.day} {MONTHS['en'][day.month - 1]} {day.year}"


def when(at: datetime, zone: ZoneInfo, lang: Lang) -> str:
    """An instant in the configured zone: "26/05/2026 23:10" or "26 May 2026 23:10"."""
    local = at.astimezone(zone)
    return f"{day_text(local.date(), lang)} {local:%H:%M}"


def month_text(month: str, lang: Lang) -> str:
    """'2026-05' -> 'mai 2026' / 'May 2026'."""
    year, number_ = (int(part) for part in month.split("-"))
    return f"{MONTHS[lang][number_ - 1]} {year}"


def weekday_names(lang: Lang) -> tuple[str, ...]:
    """Monday first, abbreviated (chart axes)."""
    return _WEEKDAYS[lang]
