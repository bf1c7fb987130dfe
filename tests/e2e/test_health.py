"""Health against a real Asterisk: `doctor` and /readyz tell a healthy PBX from a deaf
one (its SIP port taken by another process first, so its transport never bound);
the service, a real subprocess, notifies a unix datagram socket standing in for
systemd, feeds its watchdog only while it runs, and logs for the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from astreinte_ari import cli
from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port
from tests.e2e.rig import (
    ARI_PASSWORD,
    P1,
    E2ERig,
    ServiceProcess,
    e2e_config,
    sqlite_service,
)
from tests.rig.sip_impostor import SipImpostor
from tests.rig.systemd import FakeSystemd

pytestmark = pytest.mark.e2e


def _get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _checks(body: dict[str, object]) -> dict[str, dict[str, object]]:
    return {str(c["name"]): c for c in body["checks"]}  # type: ignore[union-attr,index]


def _doctor(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["doctor", "-c", str(config)])
    out = capsys.readouterr().out
    print(out)
    return code, out


@dataclass
class DeafPbx:
    pbx: LocalAsterisk
    impostor: SipImpostor
    config: Path
    db_url: str
    metrics_port: int


@pytest.fixture(scope="module")
def deaf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeafPbx]:
    """An Asterisk whose SIP port another SIP server holds (and answers on)."""
    work = tmp_path_factory.mktemp("deaf")
    impostor = SipImpostor("FakeSIP/1.0")
    config = work / "astreinte.yaml"
    pbx = LocalAsterisk(
        work / "asterisk",
        ari_password=ARI_PASSWORD,
        sip_port=impostor.port,
        dialplan_globals={"ASTREINTE_CONFIG": str(config)},
    )
    db_url = f"sqlite:///{work / 'audit.db'}"
    metrics_port = free_port()
    (work / "spool").mkdir()
    config.write_text(
        e2e_config(
            ari_url=pbx.ari_url,
            db_url=db_url,
            recordings=work / "rec",
            cel_file=pbx.cel_file,
            spool=work / "spool",
            sip_port=impostor.port,
            metrics_port=metrics_port,
        )
    )
    pbx.start()
    try:
        # The failure the issue measured: Asterisk up, ARI answering, transport not bound.
        assert "could not be started: Address already in use" in pbx.log_tail(200)
        yield DeafPbx(pbx, impostor, config, db_url, metrics_port)
    finally:
        pbx.stop()
        impostor.close()


@pytest.mark.smoke
def test_doctor_fails_on_a_deaf_pbx_and_names_the_cause(
    deaf: DeafPbx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ASTREINTE_ARI_PASSWORD", ARI_PASSWORD)
    assert cli.main(["db", "upgrade", "-c", str(deaf.config)]) == 0
    code, out = _doctor(deaf.config, capsys)
    assert code == 1
    failed = [line for line in out.splitlines() if line.strip().startswith("FAIL")]
    assert len(failed) == 1 and "SIP transport" in failed[0], out  # everything else is fine
    version = deaf.pbx.version_string
    assert (
        f"udp:127.0.0.1:{deaf.impostor.port} is answered by 'FakeSIP/1.0', not by this "
        f"Asterisk {version}: another process holds the SIP port and Asterisk is deaf"
    ) in out
    assert f"fix: see who holds the port: ss -lunp 'sport = :{deaf.impostor.port}'" in out


def test_the_service_on_a_deaf_pbx_is_not_ready_and_says_why(deaf: DeafPbx, tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    log_path.touch()
    st = os.stat(log_path)  # stderr is this file: as if systemd connected it to journald
    with FakeSystemd() as systemd:
        proc = ServiceProcess(
            deaf.config,
            deaf.db_url,
            tmp_path / "rec",
            log_path,
            env={"NOTIFY_SOCKET": systemd.env_value, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"},
        )
        proc.start(marker="ARI connected")
        try:
            # Calls are taken over ARI, so systemd hears READY=1, with the truth in STATUS=.
            ready = systemd.wait_for("READY=1", timeout=15)
            assert ready.startswith("READY=1\nSTATUS=NOT ready: SIP transport: udp:127.0.0.1:")
            status, body = _get_json(f"http://127.0.0.1:{deaf.metrics_port}/readyz")
        finally:
            code = proc.stop()
    assert code == 0, proc.log_tail()
    assert status == 503 and body["ready"] is False, body
    checks = _checks(body)
    assert [name for name, c in checks.items() if not c["ok"]] == ["sip_transport"], body
    assert "answered by 'FakeSIP/1.0', not by this Asterisk" in str(
        checks["sip_transport"]["detail"]
    )
    assert "ss -lunp" in str(checks["sip_transport"]["fix"])
    assert checks["application"]["detail"] == "ARI application 'astreinte' registered"
    log = log_path.read_text()
    assert "astreinte ready" not in log, log
    # journalctl -p err shows it: priority 3, no time of our own (journald stamps it)
    assert "\n<3>ERROR astreinte_ari.app.compose: astreinte NOT ready: SIP transport: udp:" in log
    assert "\n<6>INFO astreinte_ari.app.compose: ARI connected: app 'astreinte'" in log
    assert all(line.startswith("<") for line in log.splitlines() if line), log


@pytest.mark.smoke
def test_doctor_and_readyz_say_ready_on_a_healthy_pbx(
    e2e_rig: E2ERig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ASTREINTE_ARI_PASSWORD", ARI_PASSWORD)
    port = free_port()
    version = e2e_rig.pbx.version_string
    with sqlite_service(e2e_rig, tmp_path, metrics_port=port) as proc:
        status, body = _get_json(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and body["ready"] is True, body
        checks = _checks(body)
        assert list(checks) == ["ari", "application", "sip_transport", "trunk", "storage"]
        sip = f"udp:127.0.0.1:{e2e_rig.pbx.sip_port} answered by 'Asterisk PBX {version}'"
        assert str(checks["sip_transport"]["detail"]).startswith(sip), body
        status, health = _get_json(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and health["alive"] is True
        assert f"astreinte ready: ari: connected to {e2e_rig.pbx.ari_url}" in proc.log_tail()

        code, out = _doctor(proc.config_path, capsys)
        assert code == 0 and "FAIL" not in out, out
        assert f"  ok    SIP transport    {sip}" in out
        # A trunk through one fixed endpoint: online, or offline (no contact at all).
        text = proc.config_path.read_text()
        for endpoint, line in (
            (P1, f"  ok    trunk            PJSIP/{P1} online"),
            ("caller", "  FAIL  trunk            PJSIP/caller is offline"),
        ):
            other = tmp_path / f"trunk-{endpoint.strip('+')}.yaml"
            other.write_text(
                text.replace('dial: "PJSIP/{number}"', f'dial: "PJSIP/{{number}}@{endpoint}"')
            )
            _, out = _doctor(other, capsys)
            assert line in out, out


def test_the_service_notifies_systemd_and_feeds_the_watchdog_only_while_it_runs(
    e2e_rig: E2ERig, tmp_path: Path
) -> None:
    with FakeSystemd() as systemd:
        # WATCHDOG_USEC=1 s: a ping every 0.5 s.
        env = {"NOTIFY_SOCKET": systemd.env_value, "WATCHDOG_USEC": "1000000"}
        with sqlite_service(e2e_rig, tmp_path, env=env) as proc:
            ready = systemd.wait_for("READY=1")
            assert ready.startswith("READY=1\nSTATUS=ready: ari: connected to"), ready
            pings = [at for at, m in systemd.received if m == "WATCHDOG=1"]
            assert pings, systemd.messages()  # fed from the start, before READY=1
            systemd.wait_for("WATCHDOG=1", after=time.monotonic())
            proc.signal(signal.SIGSTOP)  # frozen: nothing may reach systemd
            frozen_from = time.monotonic()
            time.sleep(2.0)  # the window observed: four ping intervals
            frozen_to = time.monotonic()
            proc.signal(signal.SIGCONT)
            systemd.wait_for("WATCHDOG=1", after=frozen_to)
            during = [
                at
                for at, m in systemd.received
                if m == "WATCHDOG=1" and frozen_from + 0.1 < at < frozen_to
            ]
            assert during == [], "pings from a stopped process"
            stopped_at = time.monotonic()
        # Leaving the block sent SIGTERM: the drain is announced.
        stopping = systemd.wait_for("STOPPING=1", after=stopped_at)
    assert stopping == "STOPPING=1\nSTATUS=draining: 0 call(s) in progress"


def test_the_demo_pbx_does_not_say_ready_when_its_sip_port_is_taken(tmp_path: Path) -> None:
    secret = tmp_path / "ari.secret"
    secret.write_text(ARI_PASSWORD)
    impostor = SipImpostor(None)  # holds the port, answers nothing
    try:
        run = subprocess.run(
            [
                *(sys.executable, "-m", "astreinte_ari.devtools.localpbx"),
                *("--workdir", str(tmp_path / "asterisk"), "--password-file", str(secret)),
                *("--sip-port", str(impostor.port), "--http-port", str(free_port())),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    finally:
        impostor.close()
    assert run.returncode == 1, run.stdout + run.stderr
    assert "started but takes no call: no SIP answer from udp:127.0.0.1:" in run.stdout
    assert " ready: " not in run.stdout
