"""`astreinte statement --format html`, end to end, in French and English: headings,
tables and amounts checked against the figures worked out by hand, labelled
headers, no raw key shown. The scenario: statement_scenario.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.html_doc import parse_html
from tests.unit.statement_scenario import (
    ALICE_MINUTES,
    ALICE_PAY,
    ALICE_PERIODS,
    run,
    statement_db_fixture,  # noqa: F401 (a fixture)
)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", {
            "title": "Relevé d'astreinte mai 2026 : Alice Martin",
            "periods": "Périodes d'astreinte (4)",
            "period_row": ["08/05/2026 18:00", "12/05/2026 20:00",
                           "maintenance/primary (roulement)", "98 h 00 min"],
            "interventions": "Interventions (6, 2 h 12 min)",
            "call_row": ["28/05/2026 02:10", "cb-night", "12 min 00 s"],
            "amount_label": "Astreinte semaine (jour ouvré)",
            "total_row": ["Total", "847,00 EUR"],
            "warning": "repos interrompu : intervention le 27/05/2026 06:30, 7 h 00 min "
                       "seulement après la précédente (règle : 11 h 00 min)",
        }),
        ("en", {
            "title": "On-call statement May 2026: Alice Martin",
            "periods": "Periods on call (4)",
            "period_row": ["8 May 2026 18:00", "12 May 2026 20:00",
                           "maintenance/primary (rotation)", "98 h 00 min"],
            "interventions": "Interventions (6, 2 h 12 min)",
            "call_row": ["28 May 2026 02:10", "cb-night", "12 min 00 s"],
            "amount_label": "On call, weekday",
            "total_row": ["Total", "847.00 EUR"],
            "warning": "rest interrupted: intervention on 27 May 2026 06:30, only 7 h 00 min "
                       "after the previous one (rule: 11 h 00 min)",
        }),
    ],
)  # fmt: skip
def test_statement_html(
    statement_db: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lang: str,
    expected: dict[str, Any],
) -> None:
    config, url = statement_db
    target = tmp_path / "statement.html"
    code, out, err = run(capsys, "statement", "--month", "2026-05", "--person", "alice",
                         "--format", "html", "--lang", lang, "-o", str(target),
                         "-c", config, "--url", url)  # fmt: skip
    assert code == 0 and out == "" and f"written: {target}" in err
    page = target.read_text(encoding="utf-8")
    assert page.count("<section") == 1
    doc = parse_html(page)
    assert doc.lang == lang
    assert ("h1", expected["title"]) in doc.headings
    assert expected["periods"] in doc.heading_texts() and len(ALICE_PERIODS) == 4
    periods = doc.tables[0]
    assert expected["period_row"] in periods  # 8 May 18:00 -> 12 May 20:00: the override cut
    assert expected["interventions"] in doc.heading_texts() and ALICE_MINUTES == 132
    assert expected["call_row"] in doc.tables[2]
    weekday = ALICE_PAY["on_call_weekday"]
    amount = f"{weekday:,.2f}"  # the parsed text has plain spaces for no-break ones
    if lang == "fr":
        amount = amount.replace(",", " ").replace(".", ",")
    assert [expected["amount_label"], f"{amount} EUR"] in doc.tables[3]
    assert doc.tables[3][-1] == expected["total_row"]
    assert doc.items == [expected["warning"]]
    # Headers are labelled for screen readers; no raw key is shown to people.
    assert set(doc.header_scopes) == {"col", "row"}
    raw_keys = ["on_call_weekday", "on_call_hours", "amount_", "intervention_hours", "alice"]
    if lang == "fr":
        raw_keys += ["rotation", "weekday", "Total ("]
    for raw in raw_keys:
        assert raw not in doc.text, raw
