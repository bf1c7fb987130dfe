"""The .deb as an admin gets it: built by scripts/build-deb.sh, installed with apt
into a clean Debian 12 root, configured as README.Debian says, then real calls:
the installed service started as its systemd unit says (ExecStart, User,
WorkingDirectory) takes one; stopped, the dialplan fallback runs the installed
AGI program (/usr/share/asterisk/agi-bin/astreinte-fallback) for another.

A root rather than this machine: the package creates a user and system
directories, which must not leak into a developer's machine, and a minimal root
proves its Depends (a missing one fails here, not on a customer's PBX).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.devtools.localpbx import LocalAsterisk
from astreinte_ari.devtools.pbxinstall import AsteriskInstall
from tests.e2e.rig import ARI_PASSWORD, e2e_config, sipp_available
from tests.packaging.calls import (
    accepted_call_through_fallback,
    accepted_call_with_service_up,
    mobile_ports,
    rig_on,
    wait_until_ready,
)
from tests.packaging.debroot import DebRoot, build_deb, debian_root

pytestmark = pytest.mark.packaging

CONFIG = "/etc/astreinte/astreinte.yaml"
VENV = "/usr/lib/astreinte-ari/venv"


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("ASTREINTE_TEST_DEB")  # scripts/build-deb.sh's, to iterate faster
    if prebuilt:
        return Path(prebuilt)
    start = time.monotonic()
    path = build_deb(tmp_path_factory.mktemp("deb"))
    print(f"\n.deb built in {time.monotonic() - start:.0f} s: {path.stat().st_size / 1e6:.1f} MB")
    return path


@pytest.fixture(scope="module")
def root(deb: Path) -> Iterator[DebRoot]:
    if os.geteuid() != 0:
        pytest.skip("installing the .deb into a root needs root (chroot, mount)")
    with debian_root() as root:
        (root.host("/tmp") / deb.name).write_bytes(deb.read_bytes())
        start = time.monotonic()
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", f"/tmp/{deb.name}"]
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        done = root.run(install, env=env)
        if done.returncode != 0:  # the cached lists went stale: refresh, once
            root.run(["apt-get", "update", "-q"])
            done = root.run(install, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        venv_mb = _du(root.host(VENV)) / 1e6
        print(
            f"apt-get install of the .deb: {time.monotonic() - start:.1f} s; venv {venv_mb:.0f} MB"
        )
        yield root


def _du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def test_layout_user_and_directories(root: DebRoot) -> None:
    passwd = root.run(["getent", "passwd", "astreinte"])
    assert passwd.returncode == 0 and ":/var/lib/astreinte:" in passwd.stdout, passwd
    for path, mode in (
        ("/var/lib/astreinte", 0o750),
        ("/var/spool/astreinte/fallback", 0o2770),
        ("/etc/astreinte", 0o755),
    ):
        assert root.host(path).is_dir(), path
        assert root.host(path).stat().st_mode & 0o7777 == mode, path
    agi = root.host("/usr/share/asterisk/agi-bin/astreinte-fallback")
    assert os.readlink(agi).endswith("venv/bin/astreinte-fallback-agi")
    assert (root.host("/usr/share/astreinte/dialplan") / "extensions_astreinte.conf").is_file()
    assert (root.host("/usr/share/astreinte/sounds") / "fr" / "astreinte-press-1.wav").is_file()
    assert root.host(CONFIG).is_file()
    assert (
        "/etc/astreinte/astreinte.yaml"
        in root.host("/var/lib/dpkg/info/astreinte-ari.conffiles").read_text()
    )
    # Nothing of the build machine's staging tree is left in the venv.
    stray = root.run(["grep", "-rlI", "debian/astreinte-ari", VENV])
    assert stray.stdout == "", stray.stdout


def _unit(root: DebRoot) -> dict[str, str]:
    text = root.host("/lib/systemd/system/astreinte.service").read_text()
    keys = {}
    for line in text.splitlines():
        match = re.match(r"^(ExecStart|User|Group|WorkingDirectory|EnvironmentFile)=(.*)$", line)
        if match:
            keys[match[1]] = match[2].strip()
    return keys


def _admin_config(root: DebRoot, pbx: LocalAsterisk) -> None:
    """As README.Debian says: the YAML, the ARI secret (root:astreinte 0640)."""
    text = e2e_config(
        ari_url=pbx.ari_url,
        db_url="sqlite:////var/lib/astreinte/astreinte.db",
        recordings=Path("/var/lib/astreinte/recordings"),
        cel_file=pbx.cel_file,
        sip_port=pbx.sip_port,
        spool=Path("/var/spool/astreinte/fallback"),
    )
    text = text.replace(
        "app: astreinte}", "app: astreinte, password_file: /etc/astreinte/ari.secret}"
    )
    text = re.sub(r"(?m)^sounds:.*$", "sounds: {dir: /usr/share/astreinte/sounds}", text)
    root.host(CONFIG).write_text(text)
    secret = root.host("/etc/astreinte/ari.secret")
    secret.write_text(ARI_PASSWORD + "\n")
    assert root.run(["chgrp", "astreinte", "/etc/astreinte/ari.secret"]).returncode == 0
    secret.chmod(0o640)


def _as_service(root: DebRoot, *args: str) -> subprocess.CompletedProcess[str]:
    done = root.run(
        ["/usr/bin/astreinte", *args], user="astreinte", env={"HOME": "/var/lib/astreinte"}
    )
    assert done.returncode == 0, f"astreinte {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def test_installed_service_and_fallback_take_real_calls(root: DebRoot, tmp_path: Path) -> None:
    if not sipp_available():
        pytest.fail("sipp/espeak-ng/sox or Asterisk 22 missing: run scripts/install-test-deps.sh")
    prefix = AsteriskInstall.from_env().prefix
    if prefix is None:
        pytest.skip("the .deb test runs a prefix Asterisk (ASTREINTE_ASTERISK_PREFIX) in the root")
    ports = mobile_ports()
    pbx = LocalAsterisk(
        root.host("/var/tmp/pbx"),
        ari_password=ARI_PASSWORD,
        mobiles=ports,
        install=root.asterisk(prefix, tmp_path),
        dialplan_dir=root.host("/usr/share/astreinte/dialplan"),  # the installed copy
        sounds_dir=Path("/usr/share/astreinte/sounds"),
        agi_dir=Path("/usr/share/asterisk/agi-bin"),  # Debian's astagidir
        dialplan_globals={"ASTREINTE_CONFIG": CONFIG},
    )
    _admin_config(root, pbx)
    _as_service(root, "check", "-c", CONFIG)
    _as_service(root, "db", "upgrade", "-c", CONFIG)
    db_url = f"sqlite:///{root.host('/var/lib/astreinte/astreinte.db')}"
    unit = _unit(root)
    assert unit.get("User") == "astreinte", unit
    with rig_on(pbx, tmp_path, ports) as rig:
        doctor = _as_service(root, "doctor", "-c", CONFIG)
        assert "FAIL" not in doctor.stdout, doctor.stdout

        # The service as systemd would start it (no systemd in CI's container).
        workdir = unit.get("WorkingDirectory", "/")
        log = tmp_path / "service.log"
        with open(log, "ab") as out:
            service = subprocess.Popen(
                [
                    *root.argv(
                        ["/bin/sh", "-c", f"cd {workdir} && exec {unit['ExecStart']}"],
                        user=unit["User"],
                    )
                ],
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/var/lib/astreinte"},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until_ready(log, service)
            accepted_call_with_service_up(rig, db_url)
        finally:
            os.killpg(service.pid, signal.SIGTERM)
            assert service.wait(40) == 0, log.read_text(errors="replace")[-3000:]

        def import_spool() -> list[str]:
            return [_as_service(root, "fallback", "import", "-c", CONFIG).stdout]

        accepted_call_through_fallback(
            rig, root.host("/var/spool/astreinte/fallback"), import_spool, db_url
        )
