"""Figures and words for people (reports/humanize.py, reports/labels.py)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.reports.humanize import (
    DASH,
    Lang,
    day_text,
    duration,
    hours,
    language,
    money,
    month_text,
    number,
    percent,
    when,
)
from astreinte_ari.reports.kpis import PERSON_CLASSES
from astreinte_ari.reports.labels import has_label, label

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 s"),
        (0.4, "0 s"),
        (45, "45 s"),
        (59.4, "59 s"),
        (59.5, "1 min 00 s"),
        (60, "1 min 00 s"),
        (125, "2 min 05 s"),
        (3599.4, "59 min 59 s"),
        (3599.5, "1 h 00 min"),
        (3600, "1 h 00 min"),
        (3629, "1 h 00 min"),  # to the minute from an hour, half up
        (3630, "1 h 01 min"),
        (11286.0, "3 h 08 min"),
        (86400 + 90, "24 h 02 min"),
        (-1, DASH),
        (None, DASH),
        (math.nan, DASH),
        (math.inf, DASH),
    ],
)
def test_duration(seconds: float | None, expected: str) -> None:
    assert duration(seconds, "fr") == expected
    assert duration(seconds, "en") == expected  # unit symbols: the same in both


def test_hours() -> None:
    assert hours(342.0, "fr") == "342 h 00 min"
    assert hours(2.2, "en") == "2 h 12 min"
    assert hours(0.0, "en") == "0 h 00 min"
    assert hours(0.25, "fr") == "0 h 15 min"
    assert hours(10.999, "fr") == "11 h 00 min"
    assert hours(-1.0, "fr") == DASH
    assert hours(None, "fr") == DASH


@pytest.mark.parametrize(
    ("value", "decimals", "fr", "en"),
    [
        (0, 0, "0", "0"),
        (1234.5, 1, f"1{NBSP}234,5", "1,234.5"),
        (1234567, 0, f"1{NBSP}234{NBSP}567", "1,234,567"),
        (-3.25, 2, "-3,25", "-3.25"),
        (None, 0, DASH, DASH),
    ],
)
def test_number(value: float | None, decimals: int, fr: str, en: str) -> None:
    assert number(value, "fr", decimals) == fr
    assert number(value, "en", decimals) == en


@pytest.mark.parametrize(
    ("ratio", "fr", "en"),
    [
        (0.875, "87,5 %", "87.5%"),
        (0.0, "0,0 %", "0.0%"),
        (1.0, "100,0 %", "100.0%"),
        (1 / 3, "33,3 %", "33.3%"),
        (None, DASH, DASH),
    ],
)
def test_percent(ratio: float | None, fr: str, en: str) -> None:
    assert percent(ratio, "fr") == fr
    assert percent(ratio, "en") == en


def test_money_dates_and_months() -> None:
    assert money(847.0, "EUR", "fr") == "847,00 EUR"
    assert money(1810.5, "EUR", "en") == "1,810.50 EUR"
    # 21:10 UTC is 23:10 in Paris in May (summer time).
    at = datetime(2026, 5, 26, 21, 10, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    assert when(at, paris, "fr") == "26/05/2026 23:10"
    assert when(at, paris, "en") == "26 May 2026 23:10"
    # The local day, not the UTC one: 23:30 UTC on Dec 31 is Jan 1 in Paris.
    assert when(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), paris, "fr") == "01/01/2027 00:30"
    assert day_text(date(2026, 3, 1), "en") == "1 March 2026"
    assert month_text("2026-05", "fr") == "mai 2026"
    assert month_text("2026-12", "en") == "December 2026"


@pytest.mark.parametrize(("value", "expected"), [("fr", "fr"), ("en", "en"), (None, "fr"),
                                                 ("de", "fr"), ("", "fr")])  # fmt: skip
def test_language_falls_back_to_french(value: str | None, expected: Lang) -> None:
    assert language(value) == expected


def test_every_key_the_documents_show_has_words() -> None:
    statement_items = ["period", "intervention", "total", "warning",
                       *(f"on_call_hours_{k}" for k in ("weekday", "weekend", "holiday")),
                       *(f"amount_{k}" for k in ("periods", "on_call_weekday", "on_call_weekend",
                                                 "on_call_holiday", "interventions"))]  # fmt: skip
    keys = [*(str(o) for o in CallOutcome), *(str(o) for o in HopOutcome), "in_progress",
            *statement_items, "on_call_weekday", "periods", "interventions", "rotation",
            "override", "weekday", "weekend", "holiday",
            *(f"{c}_n" for c in PERSON_CLASSES.values()), "other_n"]  # fmt: skip
    missing = sorted({k for k in keys if not has_label(k)})
    assert missing == []
    assert label("on_call_weekday", "fr") == "Astreinte semaine (jour ouvré)"
    assert label("on_call_weekday", "en") == "On call, weekday"
    assert label("hop_n", "en", n="2") == "hop 2"
    assert label("no_such_key", "fr") == "no_such_key"  # never hidden
