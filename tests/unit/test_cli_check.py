"""`astreinte check` / `astreinte who` through the real CLI entry point."""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest

from astreinte_ari import cli

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"


@pytest.fixture(autouse=True)
def _other_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI imports every command module; stand in for any not written yet.
    for name in cli._COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            stub.register = lambda sub: None  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, name, stub)
    monkeypatch.delenv("ASTREINTE_CONFIG", raising=False)


def _bad_file(tmp_path: Path) -> Path:
    text = DEMO.read_text(encoding="utf-8")
    text = text.replace("{rota: primary, timeout: 20}", "{rota: primry, timeout: 45}")
    text = text.replace('"+33620000001"', '"+33720000001"')
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "-c", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "1 line(s), 1 team(s), 3 people" in out
    assert re.search(r"\+33180000000\s+Demo\s+\[after_hours\]\s+primary: Alice Demo", out)


def test_check_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bad_file(tmp_path)
    assert cli.main(["check", "-c", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+): (\S+): (.+)$")
    assert out and all(pattern.match(line) for line in out), out
    paths = {pattern.match(line).group(2) for line in out}  # type: ignore[union-attr]
    assert paths == {
        'lines."+33180000000".after_hours.hops[0].rota',
        'lines."+33180000000".after_hours.hops[0].timeout',
        "teams.demo.people.sup.mobile",
    }


def test_check_uses_env_and_needs_a_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["check"]) == 2
    assert "ASTREINTE_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("ASTREINTE_CONFIG", str(DEMO))
    assert cli.main(["check"]) == 0


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "-c", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["ari", "database"])
def test_check_refuses_world_readable_secret(
    which: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = tmp_path / f"{which}.secret"
    secret.write_text("s3cret\n" if which == "ari" else "sqlite:////tmp/x.db\n")
    secret.chmod(0o644)
    text = DEMO.read_text()
    if which == "ari":
        text = text.replace("password_file: ../var/demo/ari.secret", f"password_file: {secret}")
    else:
        text += f"\ndatabase: {{url_file: {secret}}}\n"
    (tmp_path / "c.yaml").write_text(text)
    monkeypatch.delenv("ASTREINTE_ARI_PASSWORD", raising=False)
    assert cli.main(["check", "-c", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"chmod 600 {secret}" in err and "refused" in err
    secret.chmod(0o600)
    assert cli.main(["check", "-c", str(tmp_path / "c.yaml")]) == 0
    assert "chmod" not in capsys.readouterr().err


def test_who_at_given_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A two-person rota: alice from Monday 2026-01-05 09:00, bob from 2026-01-12 09:00.
    two = tmp_path / "two.yaml"
    two.write_text(DEMO.read_text().replace("people: [alice]}", "people: [alice, bob]}"))
    assert cli.main(["who", "-c", str(two), "--at", "2026-01-12 08:59"]) == 0
    out = capsys.readouterr().out
    assert "period: after_hours" in out
    assert re.search(r"1\. primary\s+Alice Demo \(alice\)\s+\+33610000001\s+20 s", out)
    assert re.search(r"2\. supervisor\s+Superviseur Demo \(sup\)\s+\+33620000001\s+20 s", out)
    assert cli.main(["who", "-c", str(two), "--at", "2026-01-12 09:00", "--team", "demo"]) == 0
    out = capsys.readouterr().out
    assert "Bob Demo (bob)" in out and "rota primary: bob until 2026-01-19 09:00" in out


@pytest.mark.parametrize(
    "at", ["2026-01-12 08:59", "2026-01-12 09:00", "2026-11-30 03:00", "2031-07-14 12:00"]
)
def test_demo_rings_alice_then_the_supervisor_at_any_date(
    at: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the README's demo says, whatever the week: a rota that alternated
    weekly rang Bob every other week and the README's test call rang nobody."""
    assert cli.main(["who", "-c", str(DEMO), "--at", at]) == 0
    out = capsys.readouterr().out
    assert re.search(r"1\. primary\s+Alice Demo \(alice\)\s+\+33610000001", out)
    assert re.search(r"2\. supervisor\s+Superviseur Demo \(sup\)\s+\+33620000001", out)
    assert "then: voicemail" in out


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--line", "+33999999999"], 1),
        (["--team", "nope"], 1),
        (["--at", "tomorrow"], 2),
        (["--line", "+33180000000"], 0),
    ],
)
def test_who_arguments(args: list[str], code: int) -> None:
    assert cli.main(["who", "-c", str(DEMO), *args]) == code
