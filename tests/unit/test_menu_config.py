"""A line's menu and caller routes: valid ones load, every mistake names file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from astreinte_ari.config.loader import load_config
from tests.unit.test_config import GOOD, _issues, _line_of, _write

LINE = '  "+33180000000":\n'
MENU_LINES = textwrap.dedent(
    """\
      "+33180000010":
        name: Chauffage
        team: maintenance
        after_hours: {hops: [{person: alice}]}
      "+33180000011":
        name: Informatique
        team: maintenance
        after_hours: {hops: [{person: bob}]}
      "+33180000000":
        menu:
          prompt: astreinte-menu-maintenance
          timeout: 5
          default: "1"
          choices:
            "1": {label: Chauffage, line: "+33180000010"}
            "2": {label: Informatique, line: "+33180000011"}
        caller_routes:
          - {label: vip, callers: ["+33 6 11 22 33 44"], line: "+33180000011"}
    """
)
WITH_MENU = GOOD.replace(LINE, textwrap.indent(MENU_LINES, "  "), 1)


def test_menu_and_caller_routes_load(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, WITH_MENU))
    line = config.lines["+33180000000"]
    assert line.menu is not None
    assert line.menu.timeout == 5 and line.menu.default == "1"
    assert {k: c.line for k, c in line.menu.choices.items()} == {
        "1": "+33180000010",
        "2": "+33180000011",
    }
    assert line.caller_routes[0].callers == ("+33611223344",)  # spaces dropped
    assert config.lines["+33180000010"].menu is None


def test_unquoted_keys_and_default_are_keys(tmp_path: Path) -> None:
    text = WITH_MENU.replace('default: "1"', "default: 1").replace('"2": {label', "2: {label")
    menu = load_config(_write(tmp_path, text)).lines["+33180000000"].menu
    assert menu is not None and menu.default == "1" and "2" in menu.choices


MENU_PATH = 'lines."+33180000000".menu'


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        (
            '"2": {label: Informatique, line: "+33180000011"}',
            '"2": {label: Informatique, line: "+33180000099"}',
            f'{MENU_PATH}.choices."2".line',
            "unknown line '+33180000099'",
        ),
        (
            '"2": {label: Informatique, line: "+33180000011"}',
            '"2": {label: Informatique, line: "+33180000000"}',
            f'{MENU_PATH}.choices."2".line',
            "is this line itself",
        ),
        (
            '"2": {label: Informatique, line: "+33180000011"}',
            '"12": {label: Informatique, line: "+33180000011"}',
            f"{MENU_PATH}.choices",
            "'12' is not one phone key",
        ),
        (
            'default: "1"',
            'default: "3"',
            MENU_PATH,
            "menu default '3' is not one of its choices (1, 2)",
        ),
        (
            "prompt: astreinte-menu-maintenance",
            "prompt: ../etc/passwd",
            f"{MENU_PATH}.prompt",
            "is not a sound name",
        ),
        (
            "timeout: 5",
            "timeout: 0",
            f"{MENU_PATH}.timeout",
            "greater than or equal to 1",
        ),
        (
            'callers: ["+33 6 11 22 33 44"]',
            'callers: ["0611223344"]',
            'lines."+33180000000".caller_routes[0].callers[0]',
            "is not an international number",
        ),
        (
            'callers: ["+33 6 11 22 33 44"], line: "+33180000011"',
            'callers: ["+33 6 11 22 33 44"], line: "+33180000077"',
            'lines."+33180000000".caller_routes[0].line',
            "unknown line '+33180000077'",
        ),
        (
            "    after_hours: {hops: [{person: bob}]}\n",
            "    after_hours: {hops: [{person: bob}]}\n"
            '    caller_routes: [{label: x, callers: ["+33611223344"], line: "+33180000010"}]\n',
            f'{MENU_PATH}.choices."2".line',
            "has its own menu or caller_routes",
        ),
    ],
)
def test_menu_errors(tmp_path: Path, old: str, new: str, path: str, fragment: str) -> None:
    assert old in WITH_MENU
    text = WITH_MENU.replace(old, new, 1)
    issues = _issues(_write(tmp_path, text))
    match = [i for i in issues if i.path == path and fragment in i.message]
    assert match, issues
    assert match[0].line is not None


def test_empty_choices_refused(tmp_path: Path) -> None:
    lines = WITH_MENU.splitlines(keepends=True)
    start = next(i for i, t in enumerate(lines) if "choices:" in t)
    text = "".join([*lines[:start], "      choices: {}\n", *lines[start + 3 :]])
    issues = _issues(_write(tmp_path, text))
    assert any("at least one choice" in i.message for i in issues), issues
    assert [i.line for i in issues if "at least one choice" in i.message] == [
        _line_of(text, "choices: {}")
    ]
