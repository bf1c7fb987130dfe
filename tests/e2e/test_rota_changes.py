"""A cover approved through the CLI while the service runs: the next call rings the
new person, and a YAML reload keeps the approved change in force."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from astreinte_ari import cli
from tests.e2e.rig import LINE_FULL, P2, E2ERig, ServiceProcess, now_utc, sqlite_service

pytestmark = pytest.mark.e2e
PARIS = ZoneInfo("Europe/Paris")


def _wait_log(service: ServiceProcess, needle: str, occurrences: int, within: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if service.log_path.read_text(errors="replace").count(needle) >= occurrences:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not logged within {within}s:\n{service.log_tail()}")


def _rung(rig: E2ERig, service: ServiceProcess, number: str) -> list[str]:
    """Who the call's hops rang, "person number", the one at `number` accepting."""
    since = now_utc()
    agent = rig.phone(number, rig.agent("accept"))
    caller = rig.call(LINE_FULL, hold_ms=12000)
    for run in (caller, agent):
        assert run.wait(60) == 0, run.output()
    call = service.wait_for_call(since, LINE_FULL)
    assert call.outcome == "accepted", call
    return [f"{hop.person_id} {hop.number}" for hop in call.hops]


def _cli(*argv: str) -> None:
    assert cli.main(list(argv)) == 0, argv


def test_cover_approved_from_the_cli_rings_the_new_person_at_once(
    e2e_rig: E2ERig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite_service(e2e_rig, tmp_path, extra_yaml="changes_refresh_seconds: 1") as service:
        path = service.config_path
        # The team gets a manager: an edit the service reloads like any other.
        path.write_text(path.read_text().replace("  e2e:\n", "  e2e:\n    managers: [sup]\n", 1))
        _wait_log(service, "reloaded (version", 1, within=15)
        now = now_utc().astimezone(PARIS)
        start, end = now - timedelta(minutes=1), now + timedelta(hours=2)
        _cli("rota", "request", "-c", str(path), "--team", "e2e", "--rota", "primary",
             "--kind", "cover", "--from", f"{start:%Y-%m-%d %H:%M}",
             "--to", f"{end:%Y-%m-%d %H:%M}", "--as", "p2", "--reason", "p1 is ill")  # fmt: skip
        rid = capsys.readouterr().out.split()[1].rstrip(":")
        _cli("rota", "approve", rid, "-c", str(path), "--as", "sup")
        took = _wait_log(service, "approved rota changes in force: 1 override(s)", 1, within=10)
        assert took <= 5, took  # polled every second, from another process
        # The dialplan fallback's plan cache follows too (it would ring p2 as well).
        _wait_log(service, "fallback plan cache rewritten with the approved rota changes", 1, 10)
        assert _rung(e2e_rig, service, P2) == [f"p2 {P2}"]
        # A YAML edit reloads the file; the approved change stays on top of it.
        path.write_text(path.read_text().replace("name: Agent One", "name: Agent 1", 1))
        _wait_log(service, "reloaded (version", 2, within=15)
        assert _rung(e2e_rig, service, P2) == [f"p2 {P2}"]  # p1 (P1) never rung
