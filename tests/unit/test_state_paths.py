"""Where the service keeps its files by default: FHS paths for an installed service
(configuration under /etc), beside the configuration elsewhere (checkout, demo);
and the systemd unit lets the service write exactly there."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "scripts" / "astreinte.service"

MINIMAL = """\
timezone: Europe/Paris
ari: {url: http://127.0.0.1:8088, username: astreinte}
trunk: {dial: "PJSIP/{number}@operator", caller_id: "+33180000000", allowed_prefixes: ["+336"]}
lines:
  "+33180000000": {name: M, team: t, after_hours: {hops: [{person: a, timeout: 20}]}}
teams:
  t: {people: {a: {name: A, mobile: "+33612345678"}}}
"""


def _config(tmp_path: Path, extra: str = "") -> AppConfig:
    path = tmp_path / "conf" / "astreinte.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(MINIMAL + extra)
    return load_config(path)


def _installed(config: AppConfig, path: str = "/etc/astreinte/astreinte.yaml") -> AppConfig:
    # The file need not exist: defaults depend on where it is, not on its content.
    return config.model_copy(update={"source_path": Path(path)})


def test_a_configuration_under_etc_keeps_state_in_var_lib_and_spools_in_var_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASTREINTE_DATABASE_URL", raising=False)
    config = _installed(_config(tmp_path))
    assert config.database_url() == "sqlite:////var/lib/astreinte/astreinte.db"
    assert config.recordings_dir == Path("/var/lib/astreinte/recordings")
    assert config.journal_dir == Path("/var/lib/astreinte/journal")
    assert config.fallback_spool_dir == Path("/var/spool/astreinte/fallback")


def test_a_configuration_elsewhere_keeps_state_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASTREINTE_DATABASE_URL", raising=False)
    config = _config(tmp_path)
    var = tmp_path / "var"
    assert config.database_url() == f"sqlite:///{var / 'astreinte.db'}"
    assert config.recordings_dir == var / "recordings"
    assert config.journal_dir == var / "journal"
    assert config.fallback_spool_dir == var / "fallback"
    # /etcetera is not /etc: its state stays beside it (<dir>/../var)
    assert _installed(config, "/etcetera/a.yaml").recordings_dir == Path("/var/recordings")


def test_explicit_paths_win_over_the_defaults_under_etc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASTREINTE_DATABASE_URL", raising=False)
    extra = (
        'database: {url: "sqlite:////srv/a.db"}\n'
        'storage: {recordings_dir: "/srv/rec"}\n'
        'fallback: {spool_dir: "/srv/spool"}\n'
    )
    config = _installed(_config(tmp_path, extra))
    assert config.database_url() == "sqlite:////srv/a.db"
    assert config.recordings_dir == Path("/srv/rec")
    assert config.journal_dir == Path("/srv/journal")
    assert config.fallback_spool_dir == Path("/srv/spool")


def _unit_values(key: str) -> list[str]:
    values: list[str] = []
    for line in UNIT.read_text().splitlines():
        m = re.match(rf"^{key}=(.*)$", line.strip())
        if m:
            values.extend(m.group(1).split())
    return values


def test_the_unit_lets_the_service_write_every_default_path(tmp_path: Path) -> None:
    config = _installed(_config(tmp_path))
    writable = [Path(p.lstrip("-")) for p in _unit_values("ReadWritePaths")]
    state = [Path("/var/lib") / d for d in _unit_values("StateDirectory")]
    allowed = writable + state
    sqlite_file = Path(config.database_url().removeprefix("sqlite:///"))
    for path in (sqlite_file, config.recordings_dir, config.journal_dir, config.fallback_spool_dir):
        assert any(path.is_relative_to(root) for root in allowed), (path, allowed)


def test_the_unit_is_notify_with_a_watchdog_and_hardened() -> None:
    def one(key: str) -> str:
        values = _unit_values(key)
        assert len(values) == 1, (key, values)
        return values[0]

    assert one("Type") == "notify" and one("NotifyAccess") == "main"
    assert int(one("WatchdogSec")) >= 10  # pings every half: a loop lag of seconds is fine
    for key in (
        "ProtectClock",
        "ProtectKernelLogs",
        "ProtectHostname",
        "RestrictSUIDSGID",
        "MemoryDenyWriteExecute",
        "NoNewPrivileges",
    ):
        assert one(key) == "yes", key
    assert one("ProtectProc") == "invisible"
    assert _unit_values("SystemCallFilter")[0] == "@system-service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_unit_security_exposure_stays_low() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert m, out
    assert float(m.group(1)) <= 1.5, out  # 3.7 before the hardening, 1.2 after
