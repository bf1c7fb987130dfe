"""The lean holiday loader gives what `holidays.country_holidays` gives, for less memory."""

from __future__ import annotations

import subprocess
import sys

import holidays
import pytest

from astreinte_ari.public_holidays import country_holidays


@pytest.mark.parametrize(
    ("country", "subdiv", "years"),
    [
        ("FR", None, 2026),
        ("FR", "57", [2025, 2026]),  # Alsace-Moselle: Good Friday, St Stephen
        ("FRA", None, 2027),
        ("DE", "BY", 2026),
        ("BE", None, 2026),
        ("CH", "GE", 2026),
        ("GB", "SCT", 2026),
        ("US", "CA", 2026),
    ],
)
def test_same_days_and_names_as_the_library(
    country: str, subdiv: str | None, years: int | list[int]
) -> None:
    expected = holidays.country_holidays(country, subdiv=subdiv, years=years)
    got = country_holidays(country, subdiv=subdiv, years=years)
    assert dict(got) == dict(expected)
    assert len(got) > 5


def test_errors_are_the_librarys() -> None:
    with pytest.raises(NotImplementedError):
        country_holidays("XX")
    with pytest.raises(NotImplementedError):  # unknown subdivision
        country_holidays("FR", subdiv="999", years=2026)


def test_loads_one_country_not_all() -> None:
    code = (
        "import sys; from astreinte_ari.public_holidays import country_holidays; "
        "country_holidays('FR', years=2026); "
        "print(sum(m.startswith('holidays.countries.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) <= 2, out.stdout  # the library's own path loads ~250
