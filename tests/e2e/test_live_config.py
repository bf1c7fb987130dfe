"""Ops staff edit the YAML while the service runs: picked up within seconds,
a broken edit is refused and the last good configuration stays live."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.config_versions import list_config_versions
from astreinte_ari.devtools.localpbx import free_port
from tests.e2e.rig import LINE_FULL, P1, P2, E2ERig, ServiceProcess, now_utc, sqlite_service

pytestmark = pytest.mark.e2e
RELOAD_WITHIN_S = 5.0


def _wait_log(service: ServiceProcess, needle: str, occurrences: int) -> float:
    start = time.monotonic()
    while time.monotonic() - start < RELOAD_WITHIN_S + 5:
        if service.log_path.read_text(errors="replace").count(needle) >= occurrences:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not logged:\n{service.log_tail()}")


@pytest.fixture
def watched(e2e_rig: E2ERig, tmp_path: Path) -> Iterator[ServiceProcess]:
    port = free_port()
    with sqlite_service(e2e_rig, tmp_path, metrics_port=port) as proc:
        proc.metrics_url = f"http://127.0.0.1:{port}/metrics"
        yield proc


def _metric_lines(service: ServiceProcess) -> set[str]:
    assert service.metrics_url is not None
    with urllib.request.urlopen(service.metrics_url, timeout=5) as resp:
        return set(resp.read().decode().splitlines())


def test_rota_edit_is_live_and_a_broken_edit_keeps_the_last_good(
    e2e_rig: E2ERig, watched: ServiceProcess
) -> None:
    restartable = watched
    path = restartable.config_path
    original = path.read_text()
    # Swap the primary rota to Agent Two: the next call must ring P2 first.
    edited = original.replace("people: [p1]}", "people: [p2]}", 1)
    assert edited != original
    path.write_text(edited)
    delay = _wait_log(restartable, "reloaded (version", 1)
    assert delay <= RELOAD_WITHIN_S, delay
    # A broken edit (unknown person) is refused; the edited one stays live.
    path.write_text(edited.replace("people: [p2]}", "people: [nobody]}", 1))
    _wait_log(restartable, "configuration refused", 1)
    lines = _metric_lines(restartable)
    for line in (
        'astreinte_config_reloads_total{result="applied"} 1.0',
        'astreinte_config_reloads_total{result="refused"} 1.0',
        "astreinte_config_last_reload_ok 0.0",  # what the AstreinteConfigRefused rule reads
    ):
        assert line in lines, sorted(x for x in lines if "config" in x)
    since = now_utc()
    first = e2e_rig.phone(P2, e2e_rig.agent("accept"))
    caller = e2e_rig.call(LINE_FULL, hold_ms=14000)
    for run in (caller, first):
        assert run.wait(60) == 0, run.output()
    call = restartable.wait_for_call(since, LINE_FULL)
    assert call.hops[0].person_id == "p2" and call.hops[0].number == P2
    assert call.outcome == "accepted"
    assert P1 not in {h.number for h in call.hops}
    assert restartable.engine is not None
    versions = list_config_versions(restartable.engine)
    assert len(versions) == 2  # the start-up file and the accepted edit, not the broken one
