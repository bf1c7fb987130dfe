"""Big read-only scans straight from the database driver, in batches of plain tuples.

`audit verify` reads every audit record and every domain row: over a million rows,
SQLAlchemy's Result (a Row per row, its fetch machinery per batch) was a fifth of
the time. Here SQLAlchemy still builds and compiles the statement and processes the
bound values exactly as `conn.execute` would (datetimes, IN lists); only the rows
come straight from the driver's cursor. Reading `result.cursor` after an execute is
not an option: with stream_results SQLAlchemy has already pre-fetched rows from it.

Only for columns whose values the driver gives as SQLAlchemy would (no result
processor: text, integers, floats, and times read with `select_times_as_text`);
the unit tests compare both on each backend.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Select

BATCH_ROWS = 10_000  # rows per fetch: large enough that the per-batch cost vanishes

_cursor_names = itertools.count(1)


def driver_batches(
    conn: Connection, stmt: Select[Any], batch_rows: int = BATCH_ROWS
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of `stmt` as lists of tuples, `batch_rows` at a time, in the order the
    statement gives. PostgreSQL: a server-side (named) cursor, so the rows are never
    all in this process's memory."""
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect)
    expanded = compiled.construct_expanded_state()  # IN lists rendered, one value each
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
        for bind, name in compiled.bind_names.items()
    }
    processors.update(expanded.processors)
    values = {}
    for name, value in expanded.parameters.items():
        process = processors.get(name)
        values[name] = value if process is None else process(value)
    params: Any = values
    if dialect.positional:
        params = tuple(values[name] for name in expanded.positiontup or ())
    driver = conn.connection.driver_connection
    assert driver is not None
    if dialect.name == "postgresql":
        # Outside a transaction (autocommit) a named cursor must be WITH HOLD.
        cursor = driver.cursor(
            name=f"astreinte_scan_{next(_cursor_names)}", withhold=bool(driver.autocommit)
        )
    else:
        cursor = driver.cursor()
    try:
        cursor.execute(expanded.statement, params)
        while batch := cursor.fetchmany(batch_rows):
            yield batch
    finally:
        cursor.close()
