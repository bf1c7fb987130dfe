"""The KPI report for people (report --format html): French or English, names,
"3 h 08 min", labelled accessible tables; JSON and CSV unchanged for machines."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from astreinte_ari import cli
from astreinte_ari.reports.kpis import PersonStats, Report
from astreinte_ari.reports.render import to_html
from tests.unit.html_doc import parse_html
from tests.unit.statement_scenario import CONFIG
from tests.unit.test_reports import Seeded, seeded  # noqa: F401 (a fixture)

PARIS = ZoneInfo("Europe/Paris")


def _report() -> Report:
    report = Report(datetime(2026, 3, 1, tzinfo=PARIS), datetime(2026, 4, 1, tzinfo=PARIS),
                    "Europe/Paris", "+33180000000", total=8, answered=7, abandoned=1,
                    tta_median=12.4, tta_p90=None, talk_total=11286.0, talk_mean=1612.3,
                    talk_median=125.0)  # fmt: skip
    report.by_outcome = {"accepted": 7, "abandoned": 1}
    report.per_day = {"2026-03-02": 5, "2026-03-09": 3}
    report.per_hop = {1: {"accepted": 6, "no_answer": 2}, 2: {"accepted": 1}}
    report.per_person = {"alice": PersonStats(6, 6, 0, 0, 0), "gone": PersonStats(3, 1, 0, 2, 0)}
    return report


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", {
            "title": "Rapport de la ligne d'astreinte du 01/03/2026 au 31/03/2026, "
                     "ligne Maintenance (+33180000000)",
            "answered": ["Décrochés (pris par une personne)", "7", "87,5 %"],
            "talk_total": ["Temps de conversation, total", "3 h 08 min", ""],
            "talk_median": ["Temps de conversation, médiane", "2 min 05 s", ""],
            "tta_p90": ["Délai de prise d'appel, 90e centile", "—", ""],
            "people_header": ["Personne", "Sollicitée", "Acceptés", "Refusés", "Manqués",
                              "Autres"],
            "people_section": "Par personne",
            "chart": "Issue des appels",
        }),
        ("en", {
            "title": "On-call line report from 1 March 2026 to 31 March 2026, "
                     "line Maintenance (+33180000000)",
            "answered": ["Answered (taken by a person)", "7", "87.5%"],
            "talk_total": ["Talk time, total", "3 h 08 min", ""],
            "talk_median": ["Talk time, median", "2 min 05 s", ""],
            "tta_p90": ["Time to answer, 90th percentile", "—", ""],
            "people_header": ["Person", "Rung", "Accepted", "Declined", "Missed", "Other"],
            "people_section": "Per person",
            "chart": "Call outcomes",
        }),
    ],
)  # fmt: skip
def test_html_report_in_each_language(lang: str, expected: dict[str, Any]) -> None:
    page = to_html(_report(), lang, {"alice": "Alice Martin"}, "Maintenance")  # type: ignore[arg-type]
    doc = parse_html(page)
    assert doc.lang == lang
    assert doc.title == expected["title"] and ("h1", expected["title"]) in doc.headings
    summary = doc.tables[0]
    for key in ("answered", "talk_total", "talk_median", "tta_p90"):
        assert expected[key] in summary, (key, summary)
    assert expected["people_section"] in doc.heading_texts()
    people = doc.table_with(expected["people_header"][0])
    assert people[0] == expected["people_header"]
    # Names, not ids; someone no longer in the configuration keeps the id.
    assert people[1:] == [
        ["Alice Martin", "6", "6", "0", "0", "0"],
        ["gone", "3", "1", "0", "2", "0"],
    ]
    assert expected["chart"] in doc.heading_texts()
    assert set(doc.header_scopes) == {"col", "row"}
    for raw in ("alice", "11286", " s s", "talk_time"):
        assert raw not in doc.text, raw


def test_the_report_languages_default_to_the_configuration(
    seeded: tuple[Engine, list[Seeded]],  # noqa: F811
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["report", "--url", db_url, "--from", "2026-03-20", "--to", "2026-04-05"]
    english = tmp_path / "en.yaml"
    english.write_text("language: en\n" + CONFIG, encoding="utf-8")
    french = tmp_path / "fr.yaml"
    french.write_text(CONFIG, encoding="utf-8")  # no language: French
    pages = {}
    for name, argv in {
        "config_en": ["-c", str(english)],
        "config_fr": ["-c", str(french)],
        "flag_fr": ["-c", str(english), "--lang", "fr"],
        "no_config": ["--tz", "Europe/Paris", "--lang", "en"],
    }.items():
        assert cli.main([*base, *argv, "--format", "html"]) == 0
        pages[name] = parse_html(capsys.readouterr().out)
    assert {name: doc.lang for name, doc in pages.items()} == {
        "config_en": "en", "config_fr": "fr", "flag_fr": "fr", "no_config": "en"}  # fmt: skip
    people = pages["config_en"].table_with("Person")
    assert sorted(row[0] for row in people[1:]) == ["Alice Martin", "Bob Durand", "Sam Chef"]
    # Without the configuration there are no names: the ids.
    people = pages["no_config"].table_with("Person")
    assert sorted(row[0] for row in people[1:]) == ["alice", "bob", "sup"]
    # The machine formats are unchanged by the language: ids and raw seconds.
    assert cli.main([*base, "-c", str(english), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["per_person"]) == ["alice", "bob", "sup"]
    assert isinstance(data["talk_time_s"]["total"], float)
    assert cli.main([*base, "-c", str(english), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["section", "key", "subkey", "value"]
    talk = [r for r in rows if r[:2] == ["talk_time_s", "total"]]
    assert len(talk) == 1 and float(talk[0][3]) == data["talk_time_s"]["total"]


def test_an_unknown_language_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--from", "2026-03-01", "--to", "2026-04-01", "--lang", "de"])
    assert exit_.value.code == 2
    assert "--lang" in capsys.readouterr().err


def test_a_configuration_with_errors_still_gives_its_language(
    seeded: tuple[Engine, list[Seeded]],  # noqa: F811
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = tmp_path / "broken.yaml"
    assert "    team: maintenance\n" in CONFIG
    broken.write_text(
        "language: en\n" + CONFIG.replace("    team: maintenance\n", "    team: nosuch\n"),
        encoding="utf-8",
    )
    argv = ["report", "--url", db_url, "--from", "2026-03-20", "--to", "2026-04-05",
            "-c", str(broken), "--format", "html"]  # fmt: skip
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "has 1 problem" in err  # reported, and the report is still written
    doc = parse_html(out)
    assert doc.lang == "en"
    # The people cannot be trusted from a file with errors: the ids.
    people = doc.table_with("Person")
    assert sorted(row[0] for row in people[1:]) == ["alice", "bob", "sup"]
