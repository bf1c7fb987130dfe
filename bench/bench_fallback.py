"""Ring delay of the dialplan fallback: caller's INVITE -> on-call mobile's INVITE.

The service is NOT running: Stasis() fails at once and [astreinte-fallback]
runs the AGI (python + pyst2), which resolves the plan and dials the first hop.
sipp places the calls one after the other (a fresh caller and agent per call,
`-trace_msg`), and the delay is read from sipp's own message timestamps:
caller's first INVITE sent -> agent's first INVITE received.

    .venv/bin/python bench/bench_fallback.py [--calls 20] [--modes cache,yaml]

Before/after: copy this file into an export of an older commit (`git archive
<commit> | tar -x -C /tmp/old`) and run it there with `--modes yaml`.

Modes: `cache` = the plan cache file the service keeps in the spool directory
is present and current (the AGI does not load the YAML); `yaml` = no cache
(service never ran, or its cache is for another configuration): the AGI loads
and validates the YAML, the reference. Every port is picked free at run time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port  # noqa: E402
from tests.e2e.rig import LINE_FULL, P1, P2, SUP, e2e_config, make_speech  # noqa: E402
from tests.rig.sipp import SippRun, agent_scenario, caller_scenario, start_sipp  # noqa: E402

PASSWORD = "bench-" + os.urandom(6).hex()


def _even_port() -> int:
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        if port % 2 == 0 and port < 65000:
            return port
    raise RuntimeError("no free even UDP port")


def first_invite(run: SippRun, *, sent: bool) -> float:
    """Wall-clock time of the first INVITE sent / received in sipp's -trace_msg log."""
    logs = sorted(run.log_path.parent.glob(f"{run.name}_*_messages.log"))
    if not logs:
        raise RuntimeError(f"no sipp message trace for {run.name}")
    direction = "message sent" if sent else "message received"
    stamp, outgoing = "", False
    for line in logs[0].read_text(errors="replace").splitlines():
        if line.startswith("-----"):
            # "------ 2026-01-02 12:34:56.789012", then "UDP message sent (N bytes):"
            stamp = " ".join(line.strip("- ").split()[:2])
        elif " message " in line and "bytes" in line:
            outgoing = direction in line
        elif outgoing and line.startswith("INVITE sip:"):
            return datetime.fromisoformat(stamp).timestamp()
    raise RuntimeError(f"no INVITE {direction.split()[1]} in {logs[0]}")


def one_call(pbx: LocalAsterisk, work: Path, mobile_port: int, name: str, speech: Path) -> float:
    sipp_dir = work / "sipp"
    agent = start_sipp(
        sipp_dir,
        f"agent-{name}",
        agent_scenario("accept", ring_ms=50, dtmf_after_ms=300),
        local_port=mobile_port,
        media_port=_even_port(),
        extra_args=("-trace_msg",),
    )
    caller = start_sipp(
        sipp_dir,
        f"caller-{name}",
        caller_scenario(number="+33199000001", name="Bench", hold_ms=1500, speech=speech),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=_even_port(),
        remote=f"127.0.0.1:{pbx.sip_port}",
        service=LINE_FULL,
        extra_args=("-trace_msg",),
    )
    try:
        if caller.wait(30) != 0 or agent.wait(15) != 0:
            raise RuntimeError(f"call {name} failed:\n{caller.output()}\n{agent.output()}")
    finally:
        caller.kill()
        agent.kill()
    return first_invite(agent, sent=False) - first_invite(caller, sent=True)


def figures(name: str, delays: list[float]) -> str:
    ms = sorted(d * 1000 for d in delays)
    return (
        f"{name:6} {len(ms)} calls: min {ms[0]:.0f} ms, median {statistics.median(ms):.0f} ms, "
        f"max {ms[-1]:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--modes", default="cache,yaml", help="comma-separated: cache,yaml")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="astreinte-bench-fb-"))
    spool = work / "spool"
    config_path = work / "astreinte.yaml"
    ports = {number: free_port(socket.SOCK_DGRAM) for number in (P1, P2, SUP)}
    pbx = LocalAsterisk(
        work / "asterisk",
        ari_password=PASSWORD,
        mobiles=ports,
        dialplan_globals={"ASTREINTE_CONFIG": str(config_path)},
    )
    config_path.write_text(
        e2e_config(ari_url=pbx.ari_url, db_url="sqlite://", recordings=work / "rec")
        + f'fallback: {{spool_dir: "{spool}"}}\n'
    )
    pbx.start()
    # A real phone sends RTP as soon as it is answered; Answer() waits up to 500 ms
    # for that first frame, so a silent sipp caller would add 500 ms to every call.
    speech = make_speech(work / "speech.ul")
    try:
        version = pbx.cli("core show version").split()[1]
        print(f"Asterisk {version}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
        for mode in args.modes.split(","):
            delays = []
            for n in range(args.calls):
                _prepare(mode, pbx, config_path, spool)
                delays.append(one_call(pbx, work, ports[P1], f"{mode}-{n}", speech))
                _wait_idle(pbx)
            print(figures(mode, delays), flush=True)
        return 0
    finally:
        pbx.stop()
        if os.environ.get("ASTREINTE_BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


def _prepare(mode: str, pbx: LocalAsterisk, config_path: Path, spool: Path) -> None:
    """`cache`: the service published the spool in AstDB and its plan cache is
    current; `yaml`: no spool in AstDB (the service never ran), the AGI reads the YAML."""
    if mode == "yaml":
        pbx.cli("database del astreinte/fallback spool_dir")
        return
    if mode != "cache":
        raise SystemExit(f"unknown mode {mode!r}")
    # Imported here: `--modes yaml` also runs from an older checkout (before the cache).
    from astreinte_ari.adapters.fallback.plancache import CACHE_NAME, refresh_plan_cache
    from astreinte_ari.config.loader import load_config

    pbx.cli(f"database put astreinte/fallback spool_dir {spool}")
    if not (spool / CACHE_NAME).exists():
        refresh_plan_cache(load_config(config_path), datetime.now(UTC), force=True)


def _wait_idle(pbx: LocalAsterisk, timeout: float = 10.0) -> None:
    """The previous call's channels (and so its AGI) are gone."""
    deadline = time.monotonic() + timeout
    while "0 active channels" not in pbx.cli("core show channels count"):
        if time.monotonic() > deadline:
            raise RuntimeError("channels still up:\n" + pbx.cli("core show channels"))
        time.sleep(0.05)


if __name__ == "__main__":
    raise SystemExit(main())
