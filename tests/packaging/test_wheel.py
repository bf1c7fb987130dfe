"""The wheel and sdist as a user gets them: `pip install` into a fresh venv, then
check, db upgrade, doctor, run, and real calls through the installed service and
the installed fallback AGI (the dialplan and sounds read from the installed package).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from astreinte_ari.devtools.localpbx import LocalAsterisk
from tests.e2e.rig import ARI_PASSWORD, e2e_config, sipp_available
from tests.packaging.calls import (
    accepted_call_through_fallback,
    accepted_call_with_service_up,
    mobile_ports,
    rig_on,
    wait_until_ready,
)

pytestmark = pytest.mark.packaging

DATA = (
    "migrations/env.py",
    "migrations/versions/0001_initial.py",
    "dialplan/extensions_astreinte.conf",
    "dialplan/cel_custom_astreinte.conf",
    "sounds/fr/astreinte-press-1.wav",
    "sounds/ringback/astreinte-ringback.wav",
    "config/astreinte.example.yaml",
    "alembic.ini",
)


def test_wheel_carries_data_files_entry_points_and_license(dists: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dists["wheel"]).namelist())
    for rel in DATA:
        assert f"astreinte_ari/_data/{rel}" in names, rel
    assert not any(n.startswith(("migrations/", "sounds/", "dialplan/")) for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(dists["wheel"]).read(entry_points).decode()
    assert "astreinte-fallback-agi = astreinte_ari.adapters.fallback.agi:main" in text
    metadata = zipfile.ZipFile(dists["wheel"]).read(
        entry_points.replace("entry_points.txt", "METADATA")
    )
    requires = [line for line in metadata.decode().splitlines() if line.startswith("Requires-Dist")]
    base = [r for r in requires if "extra ==" not in r]
    assert not any("matplotlib" in r or "psycopg" in r for r in base), base


def test_sdist_carries_the_top_level_sources(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for rel in (*DATA, "setup.py", "setup.cfg", "LICENSE", "README.md"):
        assert rel in names, rel


@dataclass
class Venv:
    root: Path
    install_seconds: float

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin("astreinte")), *args],
            cwd=cwd,
            env=_clean_env(env or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def data_dir(self) -> Path:
        found = list(self.root.glob("lib/python3*/site-packages/astreinte_ari/_data"))
        assert len(found) == 1, found
        return found[0]


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    # Nothing of the checkout may leak in: the installed package must stand alone.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "ASTREINTE_"))}
    env["ASTREINTE_ASTERISK_PREFIX"] = os.environ.get("ASTREINTE_ASTERISK_PREFIX", "")
    return {**env, **extra}


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def venv(dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv with only the wheel and its base dependencies (no extra)."""
    root = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    start = time.monotonic()
    done = subprocess.run(
        [str(root / "bin" / "pip"), "install", "-q", str(dists["wheel"])],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seconds = time.monotonic() - start
    print(
        f"\nwheel {dists['wheel'].stat().st_size / 1e6:.1f} MB, sdist "
        f"{dists['sdist'].stat().st_size / 1e6:.2f} MB; pip install (base) {seconds:.1f} s, "
        f"venv {_du(root) / 1e6:.0f} MB"
    )
    return Venv(root, seconds)


def test_missing_extras_are_named(venv: Venv, tmp_path: Path) -> None:
    config = tmp_path / "astreinte.yaml"
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    config.write_text(
        e2e_config(ari_url="http://127.0.0.1:1", db_url=db_url, recordings=tmp_path / "rec")
    )
    assert venv.run("db", "upgrade", "-c", str(config), cwd=tmp_path).returncode == 0
    html = venv.run(
        "report",
        "--format",
        "html",
        "--from",
        "2026-01-01",
        "--to",
        "2026-02-01",
        "-c",
        str(config),
        cwd=tmp_path,
    )
    assert html.returncode == 1, html.stdout + html.stderr
    assert "pip install 'astreinte-ari[charts]'" in html.stderr, html.stderr
    pg = venv.run(
        "db",
        "upgrade",
        "-c",
        str(config),
        cwd=tmp_path,
        env={"ASTREINTE_DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/x"},
    )
    assert pg.returncode == 1 and "astreinte-ari[postgres]" in pg.stderr, pg.stderr
    assert "secret" not in pg.stderr


@pytest.fixture
def installed_pbx(venv: Venv, tmp_path: Path) -> Iterator[tuple[LocalAsterisk, Path, dict]]:
    if not sipp_available():
        pytest.fail("sipp/asterisk/espeak-ng/sox missing: run scripts/install-test-deps.sh")
    data = venv.data_dir()
    agi_dir = tmp_path / "agi-bin"  # what the admin links into Asterisk's astagidir
    agi_dir.mkdir()
    (agi_dir / "astreinte-fallback").symlink_to(venv.bin("astreinte-fallback-agi"))
    config = tmp_path / "astreinte.yaml"
    ports = mobile_ports()
    pbx = LocalAsterisk(
        tmp_path / "asterisk",
        ari_password=ARI_PASSWORD,
        mobiles=ports,
        dialplan_dir=data / "dialplan",
        sounds_dir=data / "sounds",
        agi_dir=agi_dir,
        dialplan_globals={"ASTREINTE_CONFIG": str(config)},
    )
    yield pbx, config, ports


def test_installed_wheel_checks_migrates_runs_and_takes_calls(
    venv: Venv, installed_pbx: tuple[LocalAsterisk, Path, dict], tmp_path: Path
) -> None:
    pbx, config, ports = installed_pbx
    spool = tmp_path / "spool"
    spool.mkdir()
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    text = e2e_config(
        ari_url=pbx.ari_url,
        db_url=db_url,
        recordings=tmp_path / "rec",
        cel_file=pbx.cel_file,
        sip_port=pbx.sip_port,
        spool=spool,
    )
    # No sounds.dir: the default must be the installed package's own sounds.
    config.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("sounds:")))
    env = {"ASTREINTE_ARI_PASSWORD": ARI_PASSWORD}
    check = venv.run("check", "-c", str(config), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    upgrade = venv.run("db", "upgrade", "-c", str(config), cwd=tmp_path)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    with rig_on(pbx, tmp_path, ports) as rig:
        doctor = venv.run("doctor", "-c", str(config), cwd=tmp_path, env=env)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert f"under {venv.data_dir() / 'sounds'}" in doctor.stdout, doctor.stdout

        log = tmp_path / "service.log"
        with open(log, "ab") as out:
            service = subprocess.Popen(
                [str(venv.bin("astreinte")), "run", "-c", str(config)],
                cwd=tmp_path,
                env=_clean_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until_ready(log, service)
            accepted_call_with_service_up(rig, db_url)
        finally:
            service.terminate()
            assert service.wait(40) == 0, log.read_text(errors="replace")[-3000:]

        def import_spool() -> list[str]:
            done = venv.run("fallback", "import", "-c", str(config), cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr
            return [done.stdout]

        accepted_call_through_fallback(rig, spool, import_spool, db_url)
