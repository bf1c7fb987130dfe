"""Public holiday calendars from the `holidays` package, loading only the countries used.

`holidays.country_holidays("FR")` imports every one of the ~250 country modules
(package `holidays.countries` imports them all): about 8.5 MB and 280 modules
in a long-running service that needs one or two countries. Here the country's
own module is loaded alone, from the package's registry; any case this cannot
serve (unknown code, a module that needs its neighbours) goes through
`holidays.country_holidays` unchanged, errors included.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import holidays as holidays_lib
from holidays.holiday_base import HolidayBase
from holidays.registry import COUNTRIES

_COUNTRIES_DIR = Path(holidays_lib.__file__).resolve().parent / "countries"
# code ("FR", "FRA", "France", aliases) -> (module name, class name)
_BY_CODE = {code: (module, names[0]) for module, names in COUNTRIES.items() for code in names}


def country_holidays(
    country: str, subdiv: str | None = None, years: int | Iterable[int] | None = None
) -> HolidayBase:
    """Same result as `holidays.country_holidays(country, subdiv=..., years=...)`."""
    found = _BY_CODE.get(country)
    module = _load_country_module(found[0]) if found else None
    if found is None or module is None:
        return holidays_lib.country_holidays(country, subdiv=subdiv, years=years)
    calendar: HolidayBase = getattr(module, found[1])(years=years, subdiv=subdiv)
    return calendar


@lru_cache(maxsize=256)
def public_holiday_dates(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    """One year's public holidays, cached here once for every reader: the router asks
    for each incoming call, the schedule engine for each day it looks at."""
    return frozenset(country_holidays(country, subdiv=subdiv, years=year))


def _load_country_module(name: str) -> ModuleType | None:
    full_name = f"holidays.countries.{name}"
    if full_name in sys.modules:
        return sys.modules[full_name]
    path = _COUNTRIES_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(full_name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    # Registered under its real name, so a later full import of the package reuses it.
    sys.modules[full_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[full_name]
        return None
    return module
