"""One guard for every CSV the project writes (calls list, alerts, statements, KPIs).

A spreadsheet reads a cell starting with `=`, `+`, `-` or `@` as a formula: a
caller name such as `=HYPERLINK(...)` would run in the auditor's spreadsheet
(OWASP "CSV injection"). Spreadsheets also skip leading blanks before deciding,
so `" =1+1"` and a cell starting with a tab or a carriage return are formulas
too. Such cells get a leading `'`, which the spreadsheet shows as text.

Numbers (`-5`, `+33612345678`, `-0.25`) are left alone: they are what they look
like, and phone numbers must stay searchable as written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@")
# Characters a spreadsheet skips (or treats as a cell break) before a formula.
_BLANKS = " \t\r\n"


def _is_number(text: str) -> bool:
    return text.lstrip("+-").replace(".", "", 1).isdigit()


def spreadsheet_safe(value: object) -> object:
    """`value` as a CSV cell that no spreadsheet evaluates; non-text unchanged."""
    if not isinstance(value, str) or not value:
        return value
    stripped = value.lstrip(_BLANKS)
    if _is_number(stripped):
        return value
    if value[0] in "\t\r" or stripped[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    """A csv.writer row with every cell guarded."""
    return [spreadsheet_safe(v) for v in values]


class SafeWriter:
    """csv.writer whose rows are guarded: the writers of the project use this one."""

    def __init__(self, stream: TextIO, **fmtparams: Any) -> None:
        self._writer = csv.writer(stream, **fmtparams)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow(safe_row(row))
