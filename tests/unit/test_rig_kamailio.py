"""The shipped packaging/cluster/kamailio.cfg as the cluster rig renders it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.rig.kamailio import SHIPPED_CFG, render_config

SETTINGS = {
    "ASTREINTE_LISTEN": "udp:127.0.0.1:15060",
    "ASTREINTE_DISPATCHER_LIST": "/tmp/astrig-test/dispatcher.list",
    "ASTREINTE_RUNDIR": "/tmp/astrig-test",
}


def test_the_rig_rewrites_exactly_the_site_settings() -> None:
    shipped = SHIPPED_CFG.read_text()
    rendered = render_config(shipped, SETTINGS)
    assert '#!substdef "!ASTREINTE_LISTEN!udp:127.0.0.1:15060!g"' in rendered
    assert "192.0.2.10" not in rendered  # the shipped example address is gone
    # Nothing else changed: the tests run the admins' file.
    changed = [
        (a, b) for a, b in zip(shipped.splitlines(), rendered.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 3 and all(a.startswith("#!substdef") for a, _ in changed)


def test_a_setting_the_file_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="ASTREINTE_NOPE"):
        render_config(SHIPPED_CFG.read_text(), {**SETTINGS, "ASTREINTE_NOPE": "x"})


def test_kamailio_accepts_the_shipped_config(tmp_path: Path) -> None:
    if shutil.which("kamailio") is None:
        pytest.fail("kamailio missing: run scripts/install-test-deps.sh")
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(render_config(SHIPPED_CFG.read_text(), SETTINGS))
    check = subprocess.run(
        ["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "config file ok" in check.stdout + check.stderr
