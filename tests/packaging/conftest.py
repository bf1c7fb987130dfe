"""Fixtures of the package tests: the sdist and wheel built once per session."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{'sdist': ..., 'wheel': ...} built by scripts/build-dist.sh (wheel from the sdist)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-dist.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sdist = next(out.glob("astreinte_ari-*.tar.gz"))
    wheel = next(out.glob("astreinte_ari-*-py3-none-any.whl"))
    return {"sdist": sdist, "wheel": wheel}
