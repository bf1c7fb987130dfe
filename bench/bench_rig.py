"""What both call benchmarks start the same way: the service under test, and agent
phones that survive sipp's rare socket-bind failure (bench_call_setup.py,
bench_early_dial.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.rig.crowd import even_free_port
from tests.rig.sipp import SippRun, start_sipp

SIPP_BIND_ERROR = 254  # sipp's exit code -2: "fatal error binding a socket"


def start_service(work: Path, config_yaml: str, ari_password: str) -> subprocess.Popen[bytes]:
    """`astreinte db upgrade` then `astreinte run` on `config_yaml`; returns once the
    service says it is ready (its log: work/service.log)."""
    cfg = work / "astreinte.yaml"
    cfg.write_text(config_yaml)
    env = dict(os.environ, ASTREINTE_ARI_PASSWORD=ari_password)
    astreinte = [sys.executable, "-m", "astreinte_ari"]
    subprocess.run(
        [*astreinte, "db", "upgrade", "-c", str(cfg)], env=env, check=True, capture_output=True
    )
    log_path = work / "service.log"
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the service
    service = subprocess.Popen(
        [*astreinte, "run", "-c", str(cfg)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while "astreinte ready" not in log_path.read_text():
        if time.monotonic() > deadline or service.poll() is not None:
            raise SystemExit(f"service did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    return service


def start_agent_phone(work: Path, name: str, scenario_xml: str, port: int, calls: int) -> SippRun:
    """An agent phone on its port (the one Asterisk's endpoint points at). A sipp that
    cannot bind one of its sockets exits at once (seen 1 run in 6, in CI too): it is
    started again on a new media port rather than leaving that flow unmeasured."""
    for attempt in range(1, 4):
        run = start_sipp(
            work / "sipp",
            f"{name}-{attempt}",
            scenario_xml,
            local_port=port,
            media_port=even_free_port(),
            calls=calls,
            concurrency=calls,
            timeout_s=600,
        )
        with contextlib.suppress(subprocess.TimeoutExpired):
            if run.process.wait(0.5) == SIPP_BIND_ERROR:
                print(f"  ({name}: sipp could not bind a socket, try {attempt})")
                print(run.output()[-500:], file=sys.stderr)
                time.sleep(0.5)
                continue
        return run
    return run
