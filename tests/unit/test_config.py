"""Config loading: valid files load; every kind of error names file, line and path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from astreinte_ari.config.loader import ConfigError, ConfigIssue, load_config
from astreinte_ari.config.model import NumberNotAllowed, TrunkConfig
from astreinte_ari.config.secrets import SecretError

REPO = Path(__file__).resolve().parents[2]

GOOD = textwrap.dedent(
    """\
    timezone: Europe/Paris
    ari: {url: http://127.0.0.1:8088, username: astreinte, password_file: secret/ari}
    database: {url: "sqlite:///db/astreinte.db"}
    trunk:
      dial: "PJSIP/{number}@operator"
      caller_id: "+33180000000"
      allowed_prefixes: ["+336", "+337"]
    lines:
      "+33180000000":
        name: Maintenance
        team: maintenance
        business_hours: {mon-fri: "08:00-12:00,13:30-18:00", holidays: FR}
        in_business_hours: {forward: "+33612000000", timeout: 25}
        after_hours:
          hops:
            - {rota: primary, timeout: 25}
            - {rota: secondary, timeout: 25}
            - {person: carol, timeout: 30}
          finally: voicemail
    teams:
      maintenance:
        people:
          alice: {name: Alice Martin, mobile: "+33612345678"}
          bob: {name: Bob, mobile: +33 7 12 34 56 78}
          carol: {name: Carol, mobile: "+33698765432"}
        rotas:
          primary: {every: week, handoff: "fri 18:00", start: 2026-01-02, people: [alice, bob]}
          secondary: {every: day, handoff: 08:00, start: 2026-01-02, people: [bob, alice]}
        overrides:
          - {rota: primary, person: carol, from: "2026-12-24 18:00", to: "2026-12-26 08:00"}
    """
)

# One file with one of each kind of error; "#Ex" markers give the expected line.
BAD = textwrap.dedent(
    """\
    timezone: Europe/Pariss   #E-tz
    ari: {url: http://127.0.0.1:8088, username: astreinte}
    trunk:                    #E-missing
      caller_id: "+33180000000"
      allowed_prefixes: ["+336"]
    lines:
      "+33180000000":
        name: Maintenance
        team: maintenance
        in_business_hours: {forward: "+33180000001"}   #E-forward
        business_hours: {mon-fri: "08:00-18:00"}
        after_hours:
          hops:
            - {rota: primary, timeout: 25}
            - {rota: secndary, timeout: 25}   #E-rota
            - {person: dave, timeout: 45}     #E-person-timeout
    teams:
      maintenance:
        people:
          alice: {name: Alice, mobile: "+33612345678"}
          bob: {name: Bob, mobile: "+44612345678"}   #E-prefix
        rotas:
          primary: {every: week, handoff: "fri 18:00", start: 2026-01-02, people: [alice, bob]}
          secondary: {every: week, handoff: "fri 18:00", start: 2026-01-02, people: [bob]}
    """
)


def _write(tmp_path: Path, text: str, name: str = "astreinte.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def _issues(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.issues


@pytest.mark.parametrize("name", ["astreinte.example.yaml", "demo.yaml"])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(REPO / "config" / name)
    assert config.lines and config.teams
    for line in config.lines.values():
        assert line.team in config.teams


def test_good_config_values_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.timezone == "Europe/Paris"
    team = config.teams["maintenance"]
    assert team.timezone == "Europe/Paris"  # inherited for the rota layer
    assert team.people["bob"].mobile == "+33712345678"  # unquoted, spaces removed
    assert team.rotas["secondary"].handoff == "08:00"
    assert config.ari.password_file == tmp_path / "secret" / "ari"  # relative to the file
    assert config.accept_timeout_s == 10
    assert config.voicemail_max_duration_s == 180 and config.voicemail_max_silence_s == 6
    assert config.recordings_dir == tmp_path.parent / "var" / "recordings"
    assert (config.sounds_dir / "fr").is_dir()
    monkeypatch.delenv("ASTREINTE_DATABASE_URL", raising=False)
    assert config.database_url() == f"sqlite:///{tmp_path / 'db' / 'astreinte.db'}"
    monkeypatch.setenv("ASTREINTE_DATABASE_URL", "postgresql+psycopg://u@localhost/a")
    assert config.database_url() == "postgresql+psycopg://u@localhost/a"


def test_default_database_and_url_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASTREINTE_DATABASE_URL", raising=False)
    text = GOOD.replace('database: {url: "sqlite:///db/astreinte.db"}\n', "")
    config = load_config(_write(tmp_path, text))
    assert config.database_url() == f"sqlite:///{tmp_path.parent / 'var' / 'astreinte.db'}"
    (tmp_path / "db.url").write_text("postgresql+psycopg://astreinte:pw@localhost/x\n")
    text = GOOD.replace('{url: "sqlite:///db/astreinte.db"}', "{url_file: db.url}")
    config = load_config(_write(tmp_path, text))
    assert config.database_url() == "postgresql+psycopg://astreinte:pw@localhost/x"


def test_ari_password_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(_write(tmp_path, GOOD))
    monkeypatch.delenv("ASTREINTE_ARI_PASSWORD", raising=False)
    with pytest.raises(SecretError, match="cannot read secret file"):
        config.ari_password()
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "ari").write_text("from-file\n")
    assert config.ari_password() == "from-file"
    monkeypatch.setenv("ASTREINTE_ARI_PASSWORD", "from-env")
    assert config.ari_password() == "from-env"


def test_all_errors_reported_with_line_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD, "bad.yaml")
    issues = _issues(path)
    got = {(i.line, i.path) for i in issues}
    did = 'lines."+33180000000"'
    expected = [
        ("#E-tz", "timezone", "unknown time zone 'Europe/Pariss'"),
        ("#E-missing", "trunk.dial", "missing required field"),
        ("#E-forward", f"{did}.in_business_hours.forward", "not allowed by trunk"),
        (
            "#E-rota",
            f"{did}.after_hours.hops[1].rota",
            "unknown rota 'secndary' (team maintenance has: primary, secondary)",
        ),
        ("#E-person-timeout", f"{did}.after_hours.hops[2].person", "unknown person 'dave'"),
        ("#E-person-timeout", f"{did}.after_hours.hops[2].timeout", "ring timeout 45 s"),
        ("#E-prefix", "teams.maintenance.people.bob.mobile", "+44612345678 is not allowed"),
    ]
    for marker, dotted, message in expected:
        line = _line_of(BAD, marker)
        assert (line, dotted) in got, f"{marker}: {dotted} not in {sorted(got, key=str)}"
        issue = next(i for i in issues if (i.line, i.path) == (line, dotted))
        assert message in issue.message
        assert str(issue) == f"{path}:{line}: {dotted}: {issue.message}"
    assert len(issues) == len(expected)


def test_issue_format_matches_contract() -> None:
    issue = ConfigIssue("config/x.yaml", 12, 'lines."+33".rota', "unknown rota 'x'")
    assert str(issue) == "config/x.yaml:12: lines.\"+33\".rota: unknown rota 'x'"
    assert str(ConfigIssue("f.yaml", None, "", "empty")) == "f.yaml: empty"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        # The { of line 2 is the one never closed (the parser stops on line 3).
        ("timezone: Europe/Paris\nari: {url: http://x\n  foo: [\n", 2, "{ opened on this line"),
        ("timezone: Europe/Paris\nlines:\n  a: 1\n\tb: 2\n", 4, "use spaces, not tabs"),
        ("timezone: Europe/Paris\ntimezone: UTC\n", 2, "given twice (first on line 1)"),
        ("timezone: Europe/Paris\nx: [2026-01-01, 2026-13-05]\n", 2, "there is no month 13"),
        ("", None, "the file is empty"),
    ],
)
def test_yaml_level_errors(tmp_path: Path, text: str, line: int | None, fragment: str) -> None:
    issues = _issues(_write(tmp_path, text))
    assert any(i.line == line and fragment in i.message for i in issues), issues


@pytest.mark.parametrize(
    ("date", "words"),
    [
        ("2026-02-30", "February 2026 has 28 days"),
        ("2028-02-30", "February 2028 has 29 days"),
        ("2026-13-05", "there is no month 13 (01 to 12)"),
        ("2026-04-31", "April 2026 has 30 days"),
    ],
)
def test_invalid_date_names_its_field_and_hides_nothing(
    tmp_path: Path, date: str, words: str
) -> None:
    # It used to be the only error shown, without its field.
    text = GOOD.replace(
        "start: 2026-01-02, people: [alice, bob]", f"start: {date}, people: [alice, bob]"
    )
    text = text.replace("{person: carol, timeout: 30}", "{person: carol, timeout: 45}")
    text = text.replace('"+33698765432"', '"+44698765432"')
    issues = _issues(_write(tmp_path, text))
    got = [(i.line, i.path) for i in issues]
    assert got == [
        (_line_of(text, "timeout: 45"), 'lines."+33180000000".after_hours.hops[2].timeout'),
        (_line_of(text, "+44698765432"), "teams.maintenance.people.carol.mobile"),
        (_line_of(text, date), "teams.maintenance.rotas.primary.start"),
    ]
    assert issues[-1].message == f"invalid date '{date}': {words}"


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        (
            'handoff: "fri 18:00", start: 2026-01-02',
            'handoff: "fri 18:00", start: 2026-01-03',
            "teams.maintenance.rotas.primary",
            "start 2026-01-03 is a sat",
        ),
        (
            "08:00-12:00,13:30-18:00",
            "08:00-12:00,11:30-18:00",
            'lines."+33180000000".business_hours.mon-fri',
            "overlap",
        ),
        ("holidays: FR", "holidays: XX", 'lines."+33180000000".business_hours', "XX"),
        (
            "team: maintenance",
            "team: maintenanse",
            'lines."+33180000000".team',
            "unknown team 'maintenanse'",
        ),
        (
            "finally: voicemail",
            "finally: voicemial",
            'lines."+33180000000".after_hours.finally',
            "voicemail",
        ),
        (
            "every: week",
            "every: fortnight",
            "teams.maintenance.rotas.primary.every",
            "not a rotation length",
        ),
        ('dial: "PJSIP/{number}@operator"', 'dial: "PJSIP/operator"', "trunk.dial", "{number}"),
        ("url: http://127.0.0.1:8088", "url: http://pbx.example.fr:8088", "ari.url", "https"),
        (
            'mobile: "+33612345678"',
            'mobile: "0612345678"',
            "teams.maintenance.people.alice.mobile",
            "not an international number",
        ),
        (
            "{person: carol, timeout: 30}",
            "{person: carol, rota: primary, timeout: 30}",
            'lines."+33180000000".after_hours.hops[2]',
            "exactly one of",
        ),
        ("name: Maintenance", "nom: Maintenance", 'lines."+33180000000".nom', "unknown field"),
        (
            "team: maintenance",
            "team: maintenance\n    early_dial: sometimes",
            'lines."+33180000000".early_dial',
            "valid boolean",
        ),
        (
            "team: maintenance",
            "team: maintenance\n    announcement_mode: partial",
            'lines."+33180000000".announcement_mode',
            "'full' or 'until_accepted'",
        ),
        (
            "team: maintenance",
            "team: maintenance\n    busy_agents: sometimes",
            'lines."+33180000000".busy_agents',
            "'skip', 'last' or 'ring'",
        ),
        (
            "timezone: Europe/Paris",
            "timezone: Europe/Paris\n"
            "defaults: {caller_rate_limit: {window_minutes: 10, still_ring_every_minutes: 30}}",
            "defaults.caller_rate_limit",
            "still_ring_every_minutes (30) longer than window_minutes (10)",
        ),
        (
            "timezone: Europe/Paris",
            "timezone: Europe/Paris\ndefaults: {caller_rate_limit: {still_ring: supervisor}}",
            "defaults.caller_rate_limit.still_ring",
            "'first_hop', 'last_hop' or 'all_hops'",
        ),
    ],
)
def test_single_errors(tmp_path: Path, old: str, new: str, path: str, fragment: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    issues = _issues(_write(tmp_path, text))
    match = [i for i in issues if i.path == path and fragment in i.message]
    assert match, issues
    assert match[0].line == _line_of(text, new.splitlines()[-1])


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("+33612345678", True),
        ("+33712345678", True),
        ("+33180000000", False),  # landline prefix not allowed
        ("+4412345678", False),
        ("0612345678", False),  # not E.164
        ("+336", False),  # too short
        ("+336123456789012345", False),  # too long
        ("+33612345678;x", False),  # dial string injection
        ("+3361234567\n8", False),
    ],
)
def test_dial_string_allow_list(number: str, ok: bool) -> None:
    trunk = TrunkConfig(
        dial="PJSIP/{number}@operator", caller_id="+33180000000", allowed_prefixes=("+336", "+337")
    )
    if ok:
        assert trunk.dial_string(number) == f"PJSIP/{number}@operator"
    else:
        with pytest.raises(NumberNotAllowed):
            trunk.dial_string(number)


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ("    david: [{via: voice}]", "    davdi: [{via: voice}]",
         "alerting.channels.davdi", "unknown person 'davdi'"),
        ("supervisor: claire, replacement: david", "supervisor: clarie, replacement: david",
         "alerting.shift_start[0].supervisor", "unknown person 'clarie'"),
        ("supervisor: claire, replacement: david", "supervisor: claire, replacement: dave",
         "alerting.shift_start[0].replacement", "unknown person 'dave' (team maintenance has:"),
        ("{team: maintenance, rota: primary, before: 30m",
         "{team: maintenance, rota: primery, before: 30m",
         "alerting.shift_start[0].rota", "unknown rota 'primery'"),
        ("{team: maintenance, rota: primary, before: 30m",
         "{team: maintenanse, rota: primary, before: 30m",
         "alerting.shift_start[0].team", "unknown team 'maintenanse'"),
    ],
)  # fmt: skip
def test_alerting_names_known_people_and_rotas(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    text = (REPO / "config" / "astreinte.example.yaml").read_text(encoding="utf-8")
    assert old in text
    issues = _issues(_write(tmp_path, text.replace(old, new)))
    assert [(i.path, fragment in i.message) for i in issues] == [(path, True)], issues


@pytest.mark.parametrize(
    ("old", "new", "path", "meant"),
    [
        ("trunk:", "trunc:", "trunc", "trunk"),
        ("{person: carol, timeout: 30}", "{person: carol, timout: 30}",
         'lines."+33180000000".after_hours.hops[2].timout', "timeout"),
        ('handoff: "fri 18:00", start: 2026-01-02', 'handof: "fri 18:00", start: 2026-01-02',
         "teams.maintenance.rotas.primary.handof", "handoff"),
        ('{rota: primary, person: carol, from: "2026-12-24 18:00"',
         '{rota: primary, person: carol, form: "2026-12-24 18:00"',
         "teams.maintenance.overrides[0].form", "from"),
        ("allowed_prefixes:", "allowed_prefix:", "trunk.allowed_prefix", "allowed_prefixes"),
    ],
)  # fmt: skip
def test_unknown_field_did_you_mean(
    tmp_path: Path, old: str, new: str, path: str, meant: str
) -> None:
    text = GOOD.replace(old, new, 1)
    issues = _issues(_write(tmp_path, text))
    # The misspelt key only: not also "missing required field" for the one it meant.
    assert [(i.line, i.path, i.message) for i in issues] == [
        (_line_of(text, new), path, f"unknown field '{path.rsplit('.', 1)[-1]}': "
                                    f"did you mean '{meant}'?"),
    ]  # fmt: skip
