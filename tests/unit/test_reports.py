"""`astreinte report`: KPIs from SQL checked against figures computed here from the
seed itself (not from the database), on both backends; the HTML opened in
headless Chromium with a screenshot."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from astreinte_ari import cli
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopStarted,
)
from astreinte_ari.callflow.outcomes import TEST_OUTCOMES, CallOutcome, HopOutcome
from astreinte_ari.reports.kpis import PERSON_CLASSES, build_report
from astreinte_ari.reports.render import to_html

PARIS = ZoneInfo("Europe/Paris")
SINCE = datetime(2026, 3, 20, tzinfo=PARIS)  # spans the DST change of 2026-03-29
UNTIL = datetime(2026, 4, 5, tzinfo=PARIS)
PEOPLE = ("alice", "bob", "sup")
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"


@dataclass(frozen=True)
class Seeded:
    call_id: str
    did: str
    start: datetime
    hops: tuple[tuple[str, HopOutcome], ...]
    outcome: CallOutcome
    wait: float | None  # seconds to answer, if answered
    talk: float | None


def _seed(rng: random.Random, n: int) -> list[Seeded]:
    calls = []
    span = (UNTIL - SINCE).total_seconds()
    for i in range(n):
        start = SINCE.astimezone(UTC) + timedelta(seconds=rng.uniform(-86400, span + 86400))
        outcome = rng.choice(list(CallOutcome))
        hops: list[tuple[str, HopOutcome]] = []
        for person in PEOPLE[: rng.randint(0, 3)]:
            failed = [HopOutcome.BUSY, HopOutcome.NO_ANSWER, HopOutcome.DECLINED,
                      HopOutcome.NOT_ACCEPTED, HopOutcome.SKIPPED]  # fmt: skip
            hops.append((person, rng.choice(failed)))
        wait = talk = None
        if outcome in (CallOutcome.ACCEPTED, CallOutcome.CONNECTED):
            hops.append((rng.choice(PEOPLE), HopOutcome.ACCEPTED))
            wait, talk = round(rng.uniform(5, 90), 3), round(rng.uniform(10, 600), 3)
        did = "+33180000000" if i % 3 else "+33180000099"
        calls.append(Seeded(f"c{i:04d}", did, start, tuple(hops), outcome, wait, talk))
    return calls


def _events(c: Seeded) -> list[AuditEvent]:
    events: list[AuditEvent] = [
        CallStarted(c.call_id, c.did, "L", "night", "+336", "", "ch", c.start)
    ]
    t = c.start
    for seq, (person, outcome) in enumerate(c.hops, start=1):
        hop_id = f"{c.call_id}-h{seq}"
        events.append(HopStarted(c.call_id, hop_id, seq, "r", person, person, "+336", t))
        t += timedelta(seconds=1)
        events.append(HopEnded(hop_id, outcome, t))
    end = c.start + timedelta(seconds=(c.wait or 30) + (c.talk or 0))
    if c.wait is not None:
        hop_id = f"{c.call_id}-h{len(c.hops)}"
        events.append(CallAnswered(c.call_id, hop_id, c.hops[-1][0],
                                   c.start + timedelta(seconds=c.wait)))  # fmt: skip
    events.append(CallEnded(c.call_id, c.outcome, end, "", talk_seconds=c.talk))
    return events


async def _write(engine: Engine, events: list[AuditEvent]) -> None:
    writer = AuditWriter(engine)
    try:
        for event in events:
            writer.emit(event)
        await asyncio.wait_for(writer.flush(), 60)
    finally:
        writer.close()


@pytest.fixture
def seeded(db_url: str) -> Iterator[tuple[Engine, list[Seeded]]]:
    calls = _seed(random.Random(5), 150)
    engine = create_db_engine(db_url)
    asyncio.run(_write(engine, [e for c in calls for e in _events(c)]))
    yield engine, calls
    engine.dispose()


def test_report_figures_match_the_seed(seeded: tuple[Engine, list[Seeded]]) -> None:
    engine, calls = seeded
    line = "+33180000000"
    report = build_report(engine, SINCE, UNTIL, timezone="Europe/Paris", line=line)
    mine = [c for c in calls if c.did == line and SINCE <= c.start < UNTIL]
    # The lines' test calls (seeded among the outcomes) are in no indicator.
    assert any(c.outcome in TEST_OUTCOMES for c in mine)
    mine = [c for c in mine if c.outcome not in TEST_OUTCOMES]
    assert report.total == len(mine) > 50
    outcomes = Counter(str(c.outcome) for c in mine)
    assert report.by_outcome == dict(outcomes)
    assert report.answered == outcomes["accepted"] + outcomes["connected"]
    assert report.answer_rate == pytest.approx(report.answered / len(mine))
    assert report.abandon_rate == pytest.approx(outcomes["abandoned"] / len(mine))
    assert report.voicemail == outcomes["voicemail"] + outcomes["voicemail_empty"]
    waits = sorted(c.wait for c in mine if c.wait is not None)
    deciles = statistics.quantiles(waits, n=10, method="inclusive")
    assert report.tta_median == pytest.approx(statistics.median(waits), abs=1e-3)
    assert report.tta_p90 == pytest.approx(deciles[8], abs=1e-3)
    talks = [c.talk for c in mine if c.talk is not None]
    assert report.talk_total == pytest.approx(sum(talks))
    assert report.talk_median == pytest.approx(statistics.median(talks))
    days = Counter(c.start.astimezone(PARIS).strftime("%Y-%m-%d") for c in mine)
    assert report.per_day == dict(sorted(days.items()))
    how = Counter((c.start.astimezone(PARIS).weekday(), c.start.astimezone(PARIS).hour)
                  for c in mine)  # fmt: skip
    assert all(report.hour_of_week[d][h] == n for (d, h), n in how.items())
    assert sum(map(sum, report.hour_of_week)) == len(mine)
    per_hop: dict[int, Counter[str]] = defaultdict(Counter)
    per_person: dict[str, Counter[str]] = defaultdict(Counter)
    for c in mine:
        for seq, (person, outcome) in enumerate(c.hops, start=1):
            per_hop[seq][str(outcome)] += 1
            if outcome is HopOutcome.SKIPPED:  # busy on another call: not rung
                continue
            per_person[person]["rung"] += 1
            per_person[person][PERSON_CLASSES.get(str(outcome), "other")] += 1
    assert report.per_hop == {k: dict(v) for k, v in per_hop.items()}
    for person, counts in per_person.items():
        stats = report.per_person[person]
        assert (stats.rung, stats.accepted, stats.declined, stats.missed) == (
            counts["rung"], counts["accepted"], counts["declined"], counts["missed"])  # fmt: skip


def test_report_cli_formats(seeded: tuple[Engine, list[Seeded]], db_url: str,
                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    base = ["report", "--url", db_url, "--from", "2026-03-20", "--to", "2026-04-05",
            "--tz", "Europe/Paris"]  # fmt: skip
    assert cli.main([*base, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    customers = [c for c in seeded[1] if c.outcome not in TEST_OUTCOMES]
    assert data["calls"] == sum(1 for c in customers if SINCE <= c.start < UNTIL)
    assert cli.main([*base, "--format", "csv", "--line", "+33180000099"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("section,key,subkey,value") and "per_person,alice,rung," in out


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError("chromium is missing: run scripts/install-test-deps.sh")


def _run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", *args]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def test_html_report_renders_in_chromium(tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    from astreinte_ari.adapters.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    try:
        asyncio.run(_write(engine, [e for c in _seed(random.Random(7), 80) for e in _events(c)]))
        page = to_html(build_report(engine, SINCE, UNTIL, timezone="Europe/Paris"))
    finally:
        engine.dispose()
    assert "http://" not in page and "https://" not in page  # self-contained
    report_file = tmp_path / "report.html"
    report_file.write_text(page)
    # A copy with a probe script: records each image's decoded size in the DOM.
    probe = ("<script>window.addEventListener('load',()=>{document.body.setAttribute("
             "'data-sizes',[...document.images].map(i=>i.complete+':'+i.naturalWidth+'x'+"
             "i.naturalHeight).join(' '))})</script>")  # fmt: skip
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    dom = _run_chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    sizes = re.search(r'data-sizes="([^"]*)"', dom.stdout)
    assert sizes is not None, dom.stderr[-2000:]
    images = sizes.group(1).split()
    assert len(images) == 4
    for entry in images:
        complete, size = entry.split(":")
        width, height = (int(v) for v in size.split("x"))
        assert complete == "true" and width > 200 and height > 100, images
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "report.png"
    result = _run_chromium(f"--screenshot={shot}", "--window-size=1200,2400",
                           report_file.as_uri())  # fmt: skip
    assert shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        stats = ImageStat.Stat(image.convert("L"))
        assert image.size == (1200, 2400)
        assert stats.stddev[0] > 20  # not blank: text and charts


def test_benchmark_smoke() -> None:
    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_reports.py"
    cmd = [sys.executable, str(bench), "--calls", "300", "--records", "500", "--backend", "sqlite"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "report over 300 calls" in result.stdout and "verify over 500 records" in result.stdout


def test_full_verify_benchmark_smoke() -> None:
    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_reports.py"
    cmd = [sys.executable, str(bench), "--full-verify-calls", "50", "--backend", "sqlite"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "over 900 records (50 calls)" in result.stdout
