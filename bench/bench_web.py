"""Web planning render benchmark: a 50-person team (bench_schedule.py's: two layered
rotas, 1,000 overrides over 5 years), its month page, its year page and the
"on call now" page, rendered server-side as the handlers do (data + HTML; the
team month with its change links, as an agent of the team sees it).

Prints the median and worst time per page over `--runs` renders, first render
apart (the rota is compiled once per configuration). Target: month < 100 ms.

    .venv/bin/python bench/bench_web.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from bench_schedule import build_yaml

from astreinte_ari.schedule.validate import load_checked_config
from astreinte_ari.web import pages
from astreinte_ari.web.auth import viewer_for
from astreinte_ari.web.changes_pages import change_link
from astreinte_ari.web.planning import Entry, month_view, on_call_now, year_view

TARGET_MONTH_MS = 100.0


def _time(render: Callable[[], str], runs: int) -> tuple[float, float, float, int]:
    start = time.perf_counter()
    size = len(render())
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        render()
        times.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(times), max(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(build_yaml())
        config = load_checked_config(path)
    viewer = viewer_for(config, "p00")
    assert viewer is not None
    ctx = pages.PageContext("fr", "", viewer, "x" * 64, ("big",))
    now = datetime(2027, 3, 10, 22, 0, tzinfo=UTC)
    today = date(2027, 3, 10)

    def link(team: str, item: Entry) -> str:  # as the handler: a change link per shift
        return change_link(ctx, team, item) if item.end > now else ""

    def month() -> str:
        view = month_view(config, "big", 2027, 3)
        return pages.month_page(ctx, "big", "/teams/big/month", [view], today, link)

    def person_month() -> str:
        view = month_view(config, "big", 2027, 3, person="p07")
        return pages.month_page(ctx, "p07", "/people/p07/month", [view], today)

    def year() -> str:
        return pages.year_page(ctx, "big", "/teams/big/year", [year_view(config, "big", 2027)])

    def now_page() -> str:
        return pages.now_page(ctx, *on_call_now(config, viewer, now))

    print(f"web render, 50-person team, {args.runs} runs (ms: first / median / worst, bytes)")
    ok = True
    for name, render in (
        ("month (team)", month),
        ("month (person)", person_month),
        ("year (team)", year),
        ("on call now", now_page),
    ):
        first, median, worst, size = _time(render, args.runs)
        print(f"  {name:<16} {first:8.1f} {median:8.1f} {worst:8.1f} {size:>9}")
        if name == "month (team)":
            ok = median < TARGET_MONTH_MS
    print(f"month target < {TARGET_MONTH_MS:.0f} ms (median): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
