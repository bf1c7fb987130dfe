"""The admin CLI with a configuration file that has errors (a rota typo).

The service keeps its last good configuration meanwhile; the commands that only
need the audit database keep working (with a warning naming `astreinte check`),
the ones that need the whole configuration refuse it with every problem listed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.migrate import upgrade
from tests.unit.test_store import CALL_ID, three_hop_call
from tests.unit.test_store_cli import _write
from tests.unit.test_store_cli import run as _run

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "config" / "demo.yaml").read_text(encoding="utf-8")
# The database named by the file itself, relative to it: a broken file must still
# lead to this one, not to the default SQLite path.
DATABASE = 'database: {url: "sqlite:///../data/audit.db"}\n'
KEY = "audit: {export_key_file: %s}\n"  # absolute: the loader does not resolve this one
ROTA_TYPO = ("people: [alice]}", "people: [alice, bobb]}")
TAB = ("      bob: {name", "\tbob: {name")  # a syntax error: the YAML does not parse at all


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ASTREINTE_CONFIG", "ASTREINTE_DATABASE_URL", "ASTREINTE_ARI_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A deployment: config/astreinte.yaml (valid) and its database with one call."""
    (tmp_path / "config").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "export.key").write_text("k" * 32)
    url = f"sqlite:///{tmp_path / 'data' / 'audit.db'}"
    upgrade(url)
    asyncio.run(_write(url, three_hop_call()))
    config = tmp_path / "config" / "astreinte.yaml"
    config.write_text(DEMO + DATABASE + KEY % (tmp_path / "export.key"), encoding="utf-8")
    return config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        return _run(capsys, *argv)
    except SystemExit as exc:  # some commands exit with a message, as Python prints it
        out, err = capsys.readouterr()
        return 1, out, err + f"{exc.code}\n"


def _break(config: Path, *edits: tuple[str, str]) -> str:
    text = config.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    config.write_text(text, encoding="utf-8")
    return str(config)


def _line_of(config: Path, text: str) -> int:
    lines = config.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


WARNING = "has 1 problem (listed by `astreinte check -c "


@pytest.mark.parametrize("mistake", [ROTA_TYPO, TAB], ids=["rota-typo", "tab"])
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["calls", "list"], CALL_ID[:8]),
        # In the configuration's zone, as with a good file (22:15 UTC).
        (["calls", "show", CALL_ID[:8]], "2026-03-01 23:15:00 (Europe/Paris)"),
        (["audit", "verify"], "OK: chain intact"),
        (["report", "--from", "2026-03-01", "--to", "2026-03-03", "--format", "csv"],
         "summary,calls,,1"),
        (["alerts", "list"], "no open alert"),
        (["db", "current"], "(up to date)"),
    ],
)  # fmt: skip
def test_database_commands_keep_working(
    site: Path,
    mistake: tuple[str, str],
    argv: list[str],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _break(site, mistake)
    code, out, err = run(capsys, *argv, "-c", path)
    assert code == 0, err
    assert expected in out
    database = f"database sqlite:///{site.parent}/../data/audit.db"  # as the service resolves it
    assert WARNING + path in err and f"{database}, time zone Europe/Paris" in err
    assert err.count("\n") == 1  # the warning only, stdout stays clean for --json/csv


def test_audit_export_signs_with_the_key_the_broken_file_names(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _break(site, ROTA_TYPO)
    code, out, err = run(capsys, "audit", "export", "-c", path, "--out", str(tmp_path / "x"))
    assert code == 0, err
    assert "signed (HMAC-SHA256)" in out and WARNING in err


def test_audit_export_refuses_to_go_unsigned_when_the_key_setting_is_broken(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _break(site, ("export_key_file:", "export_keyfile:"))
    code, _, err = run(capsys, "audit", "export", "-c", path, "--out", str(tmp_path / "x"))
    assert code == 1 and "--key-file" in err
    argv = ["--out", str(tmp_path / "y"), "--key-file", str(tmp_path / "export.key")]
    code, out, err = run(capsys, "audit", "export", "-c", path, *argv)
    assert code == 0 and "signed" in out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["who"],
        ["rota", "show", "--team", "demo"],
        ["statement", "--month", "2026-03"],
        ["retention", "run"],
        ["shifts"],
        ["doctor"],
    ],
)
def test_commands_needing_the_whole_configuration_refuse_it(
    site: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = _break(site, ROTA_TYPO)
    line = _line_of(site, "bobb")
    code, out, err = run(capsys, *argv, "-c", path)
    assert code == 1
    # Every problem, as `check` prints it.
    assert f"{path}:{line}: teams.demo.rotas.primary.people[1]: unknown person 'bobb'" in out + err


@pytest.mark.parametrize(
    "mistake",
    [
        ('database: {url: "sqlite:///../data/audit.db"}', 'database: {url: "sqlite:///../data/a'),
        ("database:", "databse:"),  # misspelt: the default database would be the wrong one
        ("database:", "  database:"),  # indented under the block above
        ('database: {url: "sqlite', 'database: {uri: "sqlite'),
        # The YAML does not parse: 'databse' could be the database section.
        ("database:", "databse:", *TAB),
    ],
    ids=["unclosed-quote", "misspelt-key", "indented", "unknown-field", "misspelt-and-tab"],
)
def test_a_broken_database_section_is_never_guessed(
    site: Path,
    mistake: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _break(site, *zip(mistake[::2], mistake[1::2], strict=True))
    code, out, err = run(capsys, "calls", "list", "-c", path)
    assert code == 1 and not out
    assert "its database cannot be read" in err and "--url" in err
    # The environment names the database: that is enough.
    monkeypatch.setenv("ASTREINTE_DATABASE_URL", f"sqlite:///{site.parent.parent}/data/audit.db")
    code, out, err = run(capsys, "calls", "list", "-c", path)
    assert code == 0 and CALL_ID[:8] in out, err


def test_an_unreadable_time_zone_is_said(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _break(site, ("timezone: Europe/Paris", "timezone: Europe/Pariss"))
    code, out, err = run(capsys, "calls", "list", "-c", path)
    assert code == 0 and CALL_ID[:8] in out
    assert "time zone not readable" in err


def test_a_good_file_gives_no_warning(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "calls", "list", "-c", str(site))
    assert code == 0 and CALL_ID[:8] in out and err == ""


@pytest.mark.parametrize("content", [None, "", "# everything commented out\n"])
def test_a_missing_or_empty_file_gives_nothing_to_go_on(
    site: Path, content: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty file must not mean "every default", the default database included.
    if content is None:
        site.unlink()
    else:
        site.write_text(content)
    code, out, err = run(capsys, "calls", "list", "-c", str(site))
    assert code == 1 and not out and "Traceback" not in err
    assert "refused" in err
