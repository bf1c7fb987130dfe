"""Portable SQL time arithmetic for SQLite and PostgreSQL (reports, filters).

SQLite stores our timestamps as naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'),
PostgreSQL as timestamptz; these helpers give the same numbers on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnElement


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """end - start in seconds (NULL if either is NULL)."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return cast(func.extract("epoch", end - start), Float)


def utc_hour_bucket(dialect: str, column: Any) -> ColumnElement[str]:
    """'YYYY-MM-DD HH' of a timestamp in UTC: the unit the report groups by."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return func.to_char(func.timezone(literal_column("'UTC'"), column), "YYYY-MM-DD HH24")
