"""`astreinte check` on real broken files: every problem, at the line to fix, in plain words.

Each file in data/broken_yaml/ is config/demo.yaml with the kind of slip ops staff
make when editing a rota by hand. The table says which line must be blamed (the
parser itself often stops a line or more later), the field path and the words
that must explain it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from astreinte_ari import cli
from astreinte_ari.config import yaml_syntax
from astreinte_ari.config.loader import ConfigError, load_config

DATA = Path(__file__).resolve().parent / "data" / "broken_yaml"
DID = 'lines."+33180000000"'

# file -> [(line, text that line holds, field path, words the message must contain)]
CASES: dict[str, list[tuple[int, str, str, tuple[str, ...]]]] = {
    "tab_indent.yaml": [(41, "\tbob:", "", ("indented with a tab", "use spaces, not tabs"))],
    "tab_indent_twice.yaml": [
        (41, "\tbob:", "", ("indented with a tab", "use spaces, not tabs")),
        (42, "\t\tsup:", "", ("indented with a tab",)),
    ],
    "indent_more.yaml": [
        (41, "       bob:", "teams.demo.people.bob",
         ("indented more than the line above", "7 spaces; line 40 has 6")),
    ],
    # The parser stops at line 31; the line indented wrongly is 29.
    "indent_less.yaml": [
        (29, "  team: demo", f"{DID}.team",
         ("indented less than the lines around it", "2 spaces; lines 28 and 31 have 4")),
    ],
    "indent_between.yaml": [
        (29, "   team: demo", f"{DID}.team",
         ("indented less than the line above", "does not line up with any block")),
    ],
    # The parser stops at line 30 (a quote in a comment closes the string).
    "unclosed_quote.yaml": [
        (27, 'name: "Demo', f"{DID}.name", ('("Demo) is not closed on this line', 'closing "')),
    ],
    "unclosed_quote_end.yaml": [
        (45, 'note: "on call', "teams.demo.rotas.note", ("is never closed", 'closing "')),
    ],
    "unclosed_brace.yaml": [
        (33, "timeout: 20\n", f"{DID}.after_hours.hops[0]", ("{ opened on this line is not closed",
                                                             "add }")),
    ],
    "missing_comma.yaml": [
        (33, "primary timeout", f"{DID}.after_hours.hops[0]", ("a ',' is missing",)),
    ],
    "no_space_after_colon.yaml": [
        (29, "team:demo", f"{DID}.team", ("put a space after ':' (team: demo)",)),
    ],
    "colon_in_value.yaml": [
        (27, "Demo: astreinte", f"{DID}.name", ("contains ': '", '"Demo: astreinte"')),
    ],
    "list_item_without_dash.yaml": [
        (34, "{person: sup", f"{DID}.after_hours.hops", ("does not start with '- '",)),
    ],
    "backslash_in_quotes.yaml": [
        (9, "C:\\secrets", "ari.password_file", ("backslash", "single quotes")),
    ],
    # An impossible date names its field and line, and hides nothing else.
    "invalid_date_and_more.yaml": [
        (30, "colour: blue", f"{DID}.colour", ("unknown field 'colour'", "valid here:")),
        (34, "timeout: 45", f"{DID}.after_hours.hops[0].timeout", ("ring timeout 45 s",)),
        (45, "2026-02-30", "teams.demo.rotas.primary.start",
         ("invalid date '2026-02-30'", "February 2026 has 28 days")),
    ],
    # No "people: missing" nor "unknown person 'alice'" echoes of the typo.
    "unknown_fields.yaml": [
        (5, "Timezone:", "Timezone", ("did you mean 'timezone'?",)),
        (28, "line_promt:", f"{DID}.line_promt", ("did you mean 'line_prompt'?",)),
        (39, "peple:", "teams.demo.peple", ("did you mean 'people'?",)),
    ],
}  # fmt: skip


def test_every_broken_file_has_a_case() -> None:
    assert sorted(p.name for p in DATA.glob("*.yaml")) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_file_explained(name: str) -> None:
    path = DATA / name
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    got = [(i.line, i.path, i.message) for i in info.value.issues]
    expected = CASES[name]
    assert [(line, field) for line, _, field, _ in expected] == [(g[0], g[1]) for g in got], got
    for (line, text, _, words), (_, _, message) in zip(expected, got, strict=True):
        assert text in lines[line - 1], f"data file changed: line {line} is {lines[line - 1]!r}"
        for word in words:
            assert word in message, (word, message)
        assert "did not find expected" not in message and "<block" not in message


def test_check_prints_file_line_path_message(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "invalid_date_and_more.yaml"
    assert cli.main(["check", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+): (\S+): (.+)$")
    assert [pattern.match(line) is not None for line in out.splitlines()] == [True] * 3, out
    assert "3 problems found" in err


# The parser's own words differ between libyaml and the pure-Python parser; the
# explanation must not.
SNIPPETS = [
    ("a:\n  name: Demo\n    team: x\n", 3, ("a", "team"), "indented more than the line above"),
    ("a:\n  b:\n    c: 1\n   d: 2\n", 4, ("a", "b", "d"), "does not line up with any block"),
    ("a:\n  - x\n  b: 2\n", 3, ("a", "b"), "does not start with '- '"),
    ("a:\n  name Demo\n  team: x\n", 2, ("a",), "no ':' after its key"),
    ("a:\n  b:\n  \tc: 1\n", 3, (), "use spaces, not tabs"),
    ("a:\n  name: 'Demo\n  team: x\n  c: 'y'\n  d: 1\n", 2, ("a", "name"), "not closed"),
    ("a: [1, 2\nb: 3\n", 1, ("a",), "[ opened on this line is not closed"),
    ("a:\n  b: @x\n", 2, ("a", "b"), "cannot start with '@'"),
    ("a: 1\n---\nb: 2\n", 2, (), "second document"),
    ("a: *nope\n", 1, ("a",), "'*nope'"),
]


@pytest.mark.parametrize("loader", [yaml.SafeLoader, yaml.CSafeLoader], ids=["python", "libyaml"])
@pytest.mark.parametrize(("text", "line", "path", "words"), SNIPPETS)
def test_explanation_same_for_both_parsers(
    loader: type[yaml.SafeLoader], text: str, line: int, path: tuple[str, ...], words: str
) -> None:
    with pytest.raises(yaml.MarkedYAMLError) as info:
        yaml.load(text, Loader=loader)
    [problem] = yaml_syntax.explain(text, info.value)
    assert (problem.line, problem.path) == (line, path)
    assert words in problem.message
