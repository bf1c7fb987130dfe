"""Calls recorded / placed under each fault, and how fast the service comes back.

Runs the fault scenarios of tests/e2e/fault_scenarios.py (real Asterisk, sipp
callers and agents, the real service) with more calls than the tests, and the
ARI reconnect measurement; prints one table. Nothing is asserted: the e2e tests
assert, this prints the figures for the README.

    .venv/bin/python bench/bench_reliability.py [--burst 1000] [--early 6] [--cuts 5]
    .venv/bin/python bench/bench_reliability.py --only reconnect,burst

- reconnect: the ARI connection is cut at a TCP proxy for 3 s, `--cuts` times;
  time from the proxy accepting again to the service's "ARI websocket connected".
- frozen: SIGSTOP of the service; `--early` callers hang up before the watchdog.
- killed: kill -9 with calls bridged, waiting and arriving; restart.
- unclaimed: SIGSTOP, `--early` callers leave before the watchdog, kill -9 while
  stopped: no process ever read their arrival (the dialplan's own record).
- ari_cut: 5 s ARI cut with an agent's key press during it and callers whose
  announcement ends in it.
- burst: `--burst` calls at 10/s, 30 % of the callers leaving within 2 s.
Every port is picked free at run time.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port  # noqa: E402
from tests.e2e import fault_scenarios  # noqa: E402
from tests.e2e.rig import (  # noqa: E402
    ARI_PASSWORD,
    P1,
    P2,
    SUP,
    E2ERig,
    ServiceProcess,
    make_speech,
    sqlite_service,
)
from tests.rig.faults import TcpProxy  # noqa: E402


def _log_time(line: str) -> datetime:
    """The time of a text log line: "2026-11-25 13:46:26.331+01:00 INFO ..." (aware)."""
    return datetime.fromisoformat(" ".join(line.split(" ", 2)[:2]))


def reconnect_times(rig: E2ERig, work: Path, cuts: int) -> list[float]:
    """Seconds from ARI reachable again to the service's websocket reconnected."""
    marker = "ARI websocket connected"
    times: list[float] = []
    with TcpProxy(rig.pbx.http_port) as proxy, sqlite_service(rig, work, ari_url=proxy.url) as svc:
        for _ in range(cuts):
            before = svc.log_path.read_text(errors="replace").count(marker)
            with proxy.outage() as outage:
                time.sleep(3.0)  # the outage itself: the service's backoff grows meanwhile
            deadline = time.monotonic() + 20
            while svc.log_path.read_text(errors="replace").count(marker) <= before:
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not reconnect within 20 s")
                time.sleep(0.02)
            line = [ln for ln in svc.log_path.read_text().splitlines() if marker in ln][-1]
            assert outage.restored_at is not None
            times.append((_log_time(line) - outage.restored_at).total_seconds())
    return times


@contextlib.contextmanager
def _service(rig: E2ERig, work: Path, name: str) -> Iterator[ServiceProcess]:
    folder = work / name
    folder.mkdir()
    with sqlite_service(rig, folder, clean_stop=False) as svc:
        yield svc


def _row(name: str, run: fault_scenarios.FaultRun) -> str:
    try:
        run.check.verify()
    except AssertionError as exc:
        print(f"\n[{name}] mismatches:\n{str(exc)[:4000]}", file=sys.stderr)
    figures = ", ".join(f"{k} {v:.2f}" for k, v in run.figures.items())
    return f"| {name} | {run.placed} | {run.recorded_right()} | {figures} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=1000, help="calls in the burst (10/s)")
    parser.add_argument("--early", type=int, default=6, help="callers leaving while frozen")
    parser.add_argument("--cuts", type=int, default=5, help="ARI cuts for the reconnect time")
    parser.add_argument("--only", default="", help="comma-separated subset of the scenarios")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def wanted(name: str) -> bool:
        return not only or name in only

    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as tmp:
        work = Path(tmp)
        ports = {n: free_port(socket.SOCK_DGRAM) for n in (P1, P2, SUP)}
        pbx = LocalAsterisk(work / "asterisk", ari_password=ARI_PASSWORD, mobiles=ports)
        pbx.start()
        rig = E2ERig(work, pbx, ports, make_speech(work / "speech.ul"))
        rows: list[str] = []
        try:
            if wanted("reconnect"):
                folder = work / "reconnect"
                folder.mkdir()
                times = reconnect_times(rig, folder, args.cuts)
                print(
                    f"reconnect after ARI is back: median {statistics.median(times):.2f} s, "
                    f"max {max(times):.2f} s over {len(times)} cuts of 3 s"
                )
            scenarios: list[tuple[str, Callable[[ServiceProcess], fault_scenarios.FaultRun]]] = [
                ("frozen", lambda svc: fault_scenarios.frozen(rig, svc, early=args.early)),
                ("killed", lambda svc: fault_scenarios.killed(rig, svc)),
                (
                    "unclaimed",
                    lambda svc: fault_scenarios.killed_while_frozen(rig, svc, leaving=args.early),
                ),
                ("burst", lambda svc: fault_scenarios.burst(rig, svc, calls=args.burst)),
            ]
            for name, scenario in scenarios:
                if wanted(name):
                    with _service(rig, work, name) as svc:
                        rows.append(_row(name, scenario(svc)))
                    rig.cleanup()
            if wanted("ari_cut"):
                folder = work / "ari_cut"
                folder.mkdir()
                with (
                    TcpProxy(pbx.http_port) as proxy,
                    sqlite_service(rig, folder, ari_url=proxy.url) as svc,
                ):
                    rows.append(_row("ari_cut", fault_scenarios.ari_cut(rig, proxy, svc)))
        finally:
            rig.cleanup()
            pbx.stop()
    if rows:
        print("\n| fault | calls placed | on record once, true outcome and times | figures |")
        print("|---|---|---|---|")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
