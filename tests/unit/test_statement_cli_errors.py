"""`astreinte statement` usage errors: a bad month, no configuration, an unknown
person - exit code 2 and one line that says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.statement_scenario import CONFIG, run


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "2026-5", "May 2026"])
def test_statement_bad_month(
    month: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "astreinte.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    code, out, err = run(capsys, "statement", "--month", month, "-c", str(config))
    assert code == 2 and out == ""
    assert err == (
        f"astreinte: --month: expected YYYY-MM with a month from 01 to 12, got {month!r}\n"
    )


def test_statement_without_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASTREINTE_CONFIG", raising=False)
    for argv in (["--url", f"sqlite:///{tmp_path}/audit.db"], []):
        code, out, err = run(capsys, "statement", "--month", "2026-05", *argv)
        assert code == 2 and out == ""
        assert err == (
            "astreinte: statement needs the configuration (rotas, people, "
            "compensation rates): use -c CONFIG (or set ASTREINTE_CONFIG)\n"
        )


def test_statement_unknown_person_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "astreinte.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    code, out, err = run(capsys, "statement", "--month", "2026-05", "--person", "alcie",
                         "-c", str(config), "--url", f"sqlite:///{tmp_path}/audit.db")  # fmt: skip
    assert code == 2 and out == ""
    assert "--person: no person 'alcie' in the configuration (people: alice, bob" in err
