"""The fallback AGI's plan cache: it matches the YAML across a hand-off, is used only
for the YAML it came from, and the AGI's fast path does not import the
configuration model."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.plancache import (
    CACHE_NAME,
    build_plan_cache,
    plan_from_json,
    refresh_plan_cache,
)
from astreinte_ari.config.loader import load_config
from astreinte_ari.routing.router import build_plan
from tests.unit.fallback_helpers import (
    DID,
    T0,
    FakeChannel,
    _run,
    _spool,
    _steps,
    config_file_fixture,  # noqa: F401 (a fixture)
)


def test_plan_cache_matches_the_yaml_across_a_handoff(config_file: Path) -> None:
    # The demo rota with two people, so that the handoff changes who is rung.
    text = config_file.read_text()
    config_file.write_text(text.replace("people: [alice]}", "people: [alice, bob]}"))
    config = load_config(config_file)
    # Sun 2027-01-17 12:00 Paris: the weekly handoff (mon 09:00) is 21 h ahead.
    start = datetime(2027, 1, 17, 11, 0, 30, tzinfo=UTC)
    cache = build_plan_cache(config, start)
    segments = cache["lines"][DID]
    assert (
        len(segments) == 2 and segments[0][1] == datetime(2027, 1, 18, 8, 0, tzinfo=UTC).timestamp()
    )
    probe = datetime(2027, 1, 17, 11, 0, tzinfo=UTC)
    while probe < start + timedelta(hours=35):
        t = probe.timestamp()
        [index] = [i for a, b, i in segments if a <= t < b]
        assert plan_from_json(cache["plans"][index]) == build_plan(config, DID, probe)
        probe += timedelta(minutes=7, seconds=13)


def test_agi_uses_the_cache_only_for_the_yaml_it_came_from(config_file: Path) -> None:
    spool = _spool(config_file)
    refresh_plan_cache(load_config(config_file), datetime.fromtimestamp(T0 - 60, UTC))

    def source(uniqueid: str) -> str:
        _run(config_file, FakeChannel({}), uniqueid, cache_dir=str(spool))
        return str(_steps(spool / f"{uniqueid}.jsonl")[0]["plan_source"])

    assert source("1800000000.81") == "cache"
    config_file.write_text(config_file.read_text() + "# edited\n")
    assert source("1800000000.82") == "yaml"  # and the AGI rewrote the cache after the call
    assert source("1800000000.83") == "cache"
    config_file.write_text(config_file.read_text() + "lines: [broken\n")
    assert source("1800000000.84") == "cache-last-good"
    (spool / CACHE_NAME).unlink()
    with pytest.raises(Exception, match=r"the \[ opened on this line is not closed"):
        _run(config_file, FakeChannel({}), "1800000000.85", cache_dir=str(spool))


def test_agi_fast_path_does_not_import_the_configuration_model() -> None:
    code = (
        "import sys; import astreinte_ari.adapters.fallback.agi; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
