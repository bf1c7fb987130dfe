"""End-to-end rig: one private Asterisk, the service as a real subprocess, sipp phones."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import CallDetail, get_call, list_calls
from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port
from astreinte_ari.devtools.pbxinstall import AsteriskInstall
from tests.e2e.rig_config import (
    ARI_PASSWORD,
    DESK,
    LINE_DESK,
    LINE_EARLY,
    LINE_EARLY_CUT,
    LINE_FULL,
    LINE_MENU,
    LINE_P2,
    LINE_SHORT,
    LINE_TEAM,
    MENU_PROMPT,
    OUTSIDE,
    P1,
    P2,
    SUP,
    e2e_config,
)
from tests.rig.crowd import CallerCrowd, CallPlan, start_callers
from tests.rig.phones import AgentPhone, agent_phone_scenario, start_agent_phone
from tests.rig.sipp import SippRun, agent_scenario, caller_scenario, sipp_media_port, start_sipp

# The configuration's names (rig_config.py) are importable from here too.
__all__ = [
    "ARI_PASSWORD",
    "DESK",
    "LINE_DESK",
    "LINE_EARLY",
    "LINE_EARLY_CUT",
    "LINE_FULL",
    "LINE_MENU",
    "LINE_P2",
    "LINE_SHORT",
    "LINE_TEAM",
    "MENU_PROMPT",
    "OUTSIDE",
    "P1",
    "P2",
    "SUP",
    "E2ERig",
    "ServiceProcess",
    "e2e_config",
    "finish",
    "make_speech",
    "now_utc",
    "sipp_available",
    "sqlite_service",
]


def make_speech(path: Path) -> Path:
    """A few seconds of real speech as raw mu-law, streamed by the sipp caller."""
    wav = path.with_suffix(".wav")
    subprocess.run(
        [
            "espeak-ng",
            "-v",
            "fr",
            "-w",
            str(wav),
            "Bonjour, la pompe numéro trois est en panne, merci de rappeler.",
        ],
        check=True,
    )
    subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-t", "ul", str(path)], check=True)
    return path


@dataclass
class ServiceProcess:
    config_path: Path
    db_url: str
    recordings: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    engine: Engine | None = None
    metrics_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # e.g. NOTIFY_SOCKET, as systemd
    command_prefix: Sequence[str] = ()  # e.g. `ip netns exec <node>` (tests/rig/cluster.py)

    def start(
        self, timeout: float = 20.0, *, migrate: bool = True, marker: str = "astreinte ready"
    ) -> None:
        """Start and wait until `marker` is logged (once more than before); `migrate`
        first runs `db upgrade` (which needs the database: a test of a start with the
        database down passes False)."""
        env = dict(os.environ, ASTREINTE_ARI_PASSWORD=ARI_PASSWORD, **self.env)
        if migrate:
            upgrade = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "astreinte_ari",
                    "db",
                    "upgrade",
                    "-c",
                    str(self.config_path),
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        # The log is appended to across restarts: wait for one more "ready" than now.
        readies = self._log_text().count(marker)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    *self.command_prefix,
                    sys.executable,
                    "-m",
                    "astreinte_ari",
                    "run",
                    "-c",
                    str(self.config_path),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._log_text().count(marker) > readies:
                self.engine = create_db_engine(self.db_url)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"service did not become ready:\n{self.log_tail()}")

    def _log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        proc, self.process = self.process, None
        if self.engine is not None:
            self.engine.dispose()
        if proc is None:
            return None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def signal(self, sig: int) -> None:
        """SIGKILL = crash, SIGTERM = graceful stop (the test then waits or restarts)."""
        assert self.process is not None
        os.killpg(self.process.pid, sig)
        if sig == signal.SIGKILL:
            self.process.wait(10)
            self.process = None
            if self.engine is not None:
                self.engine.dispose()

    def wait_for_call(self, since: datetime, did: str, timeout: float = 30.0) -> CallDetail:
        """The call to `did` that started after `since`, once it has ended."""
        assert self.engine is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = list_calls(self.engine, since=since, did=did, limit=5)
            if calls and calls[0].ended_at is not None:
                assert len(calls) == 1, f"expected one call, got {len(calls)}"
                detail = get_call(self.engine, calls[0].id)
                assert detail is not None
                return detail
            time.sleep(0.2)
        raise AssertionError(f"no ended call to {did} since {since}:\n{self.log_tail()}")


@dataclass
class E2ERig:
    workdir: Path
    pbx: LocalAsterisk
    mobile_ports: Mapping[str, int]  # mobiles by number, and the desk phone by endpoint
    speech: Path
    runs: list[SippRun] = field(default_factory=list)

    def agent(self, behaviour: str, **options: Any) -> str:
        """An agent's phone scenario; answered phones send speech like real ones."""
        return agent_scenario(behaviour, speech=self.speech, **options)

    def phone(self, number: str, scenario_xml: str, name: str | None = None) -> SippRun:
        """The phone of `number` (a mobile) or of an endpoint of the PBX (DESK)."""
        run = start_sipp(
            self.workdir / "sipp",
            name or f"m{number.lstrip('+')}-{uuid.uuid4().hex[:6]}",
            scenario_xml,
            local_port=self.mobile_ports[number],
            media_port=_even_free_port(),
        )
        self.runs.append(run)
        return run

    def call(
        self,
        did: str,
        *,
        hold_ms: int,
        caller: str = "+33199000001",
        name: str = "Client Test",
        keys: Sequence[tuple[int, str]] = (),
    ) -> SippRun:
        """`keys`: (pause in ms, key) the caller presses in turn once answered."""
        run = start_sipp(
            self.workdir / "sipp",
            f"caller-{uuid.uuid4().hex[:6]}",
            caller_scenario(
                number=caller, name=name, hold_ms=hold_ms, speech=self.speech, keys=keys
            ),
            local_port=free_port(socket.SOCK_DGRAM),
            media_port=_even_free_port(),
            remote=f"127.0.0.1:{self.pbx.sip_port}",
            service=did,
        )
        self.runs.append(run)
        return run

    def callers(
        self, did: str, plans: Sequence[CallPlan], *, rate: float = 2.0, timeout_s: int = 120
    ) -> CallerCrowd:
        """One sipp placing every call of `plans` at `rate`/s, each with its own number
        and hang-up plan (tests/rig/crowd.py); wire() gives what it really did."""
        crowd = start_callers(
            self.workdir / "sipp",
            plans,
            target=f"127.0.0.1:{self.pbx.sip_port}",
            did=did,
            rate=rate,
            speech=self.speech,
            name=f"crowd-{uuid.uuid4().hex[:6]}",
            timeout_s=timeout_s,
        )
        self.runs.append(crowd.run)
        return crowd

    def agent_phone(self, number: str, behaviour: str, **options: Any) -> AgentPhone:
        """The mobile `number` serving any number of calls (tests/rig/phones.py)."""
        phone = start_agent_phone(
            self.workdir / "sipp",
            f"phone{number[1:]}-{uuid.uuid4().hex[:6]}",
            agent_phone_scenario(behaviour, speech=self.speech, **options),
            port=self.mobile_ports[number],
        )
        self.runs.append(phone.run)
        return phone

    def wait_for_bridge(self, channel_prefix: str, timeout: float = 30.0) -> list[str]:
        """Channels of the first bridge that holds two channels, one of them ours."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for bridge in self.pbx.ari_get("/bridges"):  # type: ignore[union-attr]
                channels = list(bridge["channels"])
                if len(channels) == 2 and any(c.startswith(channel_prefix) for c in channels):
                    return channels
            time.sleep(0.2)
        raise AssertionError(f"no two-party bridge within {timeout}s")

    def cleanup(self) -> None:
        for run in self.runs:
            run.kill()
        self.runs.clear()


@contextlib.contextmanager
def sqlite_service(
    rig: E2ERig,
    tmp_path: Path,
    *,
    clean_stop: bool = True,
    ari_url: str | None = None,
    env: Mapping[str, str] | None = None,
    **config: Any,
) -> Iterator[ServiceProcess]:
    """The service on its own SQLite file with the e2e configuration (+ `config`
    overrides), started; stopped and the rig's calls cleared afterwards.
    `clean_stop`: its exit code must be 0 (not for tests that kill it themselves).
    `ari_url`: reach ARI elsewhere than the PBX itself (e.g. through a TcpProxy).
    `env`: added to the service's environment (e.g. what systemd sets)."""
    config_path = tmp_path / "astreinte.yaml"
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    spool = tmp_path / "spool"  # its own: a shared one would mix tests' fallback calls
    spool.mkdir(exist_ok=True)
    config_path.write_text(
        e2e_config(
            ari_url=ari_url or rig.pbx.ari_url,
            db_url=db_url,
            recordings=tmp_path / "rec",
            cel_file=rig.pbx.cel_file,
            spool=spool,
            sip_port=rig.pbx.sip_port,
            desk_phone=DESK in rig.pbx.sip_phones,
            **config,
        )
    )
    # As an admin deploys it: the fallback reads this service's configuration.
    rig.pbx.cli(f"dialplan set global ASTREINTE_CONFIG {config_path}")
    proc = ServiceProcess(
        config_path, db_url, tmp_path / "rec", tmp_path / "service.log", env=dict(env or {})
    )
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        rig.cleanup()
        assert code == 0 or not clean_stop, f"service exited with {code}:\n{proc.log_tail()}"


def _even_free_port() -> int:
    return sipp_media_port()  # even, and the video port sipp also binds (+2) free


def finish(*runs: SippRun, timeout: float = 90) -> None:
    """Every sipp phone ended its scenario successfully."""
    for run in runs:
        code = run.wait(timeout)
        assert code == 0, f"sipp {run.name} exited {code}:\n{run.output()}"


def now_utc() -> datetime:
    return datetime.now(UTC)


def sipp_available() -> bool:
    tools = all(shutil.which(tool) for tool in ("sipp", "espeak-ng", "sox"))
    return tools and AsteriskInstall.from_env().missing() is None
