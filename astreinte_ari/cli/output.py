"""One output convention for every command that prints rows (issue 18).

- `--format table|json|csv` (table by default, for people); `--json` is an alias
  of `--format json` wherever it existed or is added.
- json: a list of objects, each with the same keys (the command's columns, in
  order; a missing value is null). Times are ISO 8601 with their UTC offset
  (a naive time read from SQLite is UTC). Lists stay lists.
- csv: a header row of the same keys, through the csv module, every cell through
  the formula-injection guard of reports/csv_safe.py; a list is joined with ",".
- Rows cut by `--limit` are never cut silently: a notice on stderr says how many
  were shown out of how many, and how to get the rest (stdout stays parseable).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TextIO

from astreinte_ari.reports.csv_safe import SafeWriter

FORMATS = ("table", "json", "csv")
Row = Mapping[str, object]


def add_format_options(parser: argparse.ArgumentParser, *, json_alias: bool = True) -> None:
    """--format table|json|csv, and --json as its alias."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (default), json (a list of objects with fixed keys, ISO 8601 times "
        "with offset) or csv (same keys as header)",
    )
    if json_alias:
        parser.add_argument(
            "--json", dest="format", action="store_const", const="json", help="= --format json"
        )


def add_limit_options(parser: argparse.ArgumentParser, noun: str, *, all_flag: bool) -> None:
    """--limit N and the way to lift it: --no-limit everywhere, --all where free
    (`alerts list --all` already means "closed ones too")."""
    parser.add_argument(
        "--limit",
        type=int,
        default=50,
        help=f"at most N {noun} (default 50; a notice on stderr says when some are left out)",
    )
    flags = ("--all", "--no-limit") if all_flag else ("--no-limit",)
    parser.add_argument(*flags, dest="no_limit", action="store_true", help=f"every {noun}")


def more_hint(all_flag: bool) -> str:
    return "--all" if all_flag else "--no-limit"


def limit_notice(
    shown: int,
    total: int,
    noun: str,
    hint: str = "--all",
    *,
    skipped: int = 0,
    stream: TextIO | None = None,
) -> None:
    """On stderr, when rows were left out (`skipped`: the earlier pages'): scripts
    reading stdout get clean output and people still learn the list is not whole."""
    if skipped == 0 and shown >= total:
        return
    if skipped == 0:
        which = f"{shown} of {total} {noun}"
    elif shown:
        which = f"{noun} {skipped + 1}-{skipped + shown} of {total}"
    else:
        which = f"none of {total} {noun} (past the last page)"
    print(f"showing {which}: use --limit N or {hint}", file=stream or sys.stderr)


def json_value(value: object) -> object:
    """A cell as JSON: aware ISO 8601 times, lists as lists, the rest as is."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    return value


def _csv_value(value: object) -> object:
    value = json_value(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else value


def write_json(rows: Sequence[Row], columns: Sequence[str], stream: TextIO) -> None:
    data = [{c: json_value(row.get(c)) for c in columns} for row in rows]
    stream.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_csv(rows: Sequence[Row], columns: Sequence[str], stream: TextIO) -> None:
    writer = SafeWriter(stream, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_csv_value(row.get(c)) for c in columns)


def emit_rows(
    fmt: str,
    rows: Sequence[Row],
    columns: Sequence[str],
    table: Callable[[], None],
    stream: TextIO | None = None,
) -> None:
    """Print `rows` as `fmt`; `table` prints the human table (each command has its own)."""
    out = stream or sys.stdout
    if fmt == "json":
        write_json(rows, columns, out)
    elif fmt == "csv":
        write_csv(rows, columns, out)
    else:
        table()


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
