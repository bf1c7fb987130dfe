"""`astreinte statement` as CSV, end to end: one person's and everyone's figures
checked against those worked out by hand, and the human columns in French and
English. The scenario: statement_scenario.py."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from tests.unit.statement_scenario import (
    ALICE_HOLIDAY_H,
    ALICE_INTERVENTIONS,
    ALICE_MINUTES,
    ALICE_PAY,
    ALICE_PERIODS,
    ALICE_WEEKDAY_H,
    ALICE_WEEKEND_H,
    HOLIDAY_RATE,
    INTERVENTION_RATE,
    PER_PERIOD,
    WEEKDAY_RATE,
    WEEKEND_RATE,
    paris,
    run,
    statement_db_fixture,  # noqa: F401 (a fixture)
)

MACHINE_COLUMNS = ["person", "month", "item", "start", "end", "hours", "detail"]


def _rows(text: str) -> list[list[str]]:
    """The machine columns of each row: the same as before the human columns came,
    which are appended after them (importers reading by position still work)."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [*MACHINE_COLUMNS, "label", "name"]
    return [row[: len(MACHINE_COLUMNS)] for row in rows[1:]]


def test_statement_csv_for_one_person(
    statement_db: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, url = statement_db
    code, out, err = run(capsys, "statement", "--month", "2026-05", "--person", "alice",
                         "-c", config, "--url", url)  # fmt: skip
    assert code == 0, err
    rows = _rows(out)
    assert {row[:2] == ["alice", "2026-05"] for row in rows} == {True}
    by_item: dict[str, list[list[str]]] = {}
    for row in rows:
        by_item.setdefault(row[2], []).append(row[3:])
    assert by_item["period"] == [
        [start, end, hours, "maintenance/primary (rotation)"] for start, end, hours in ALICE_PERIODS
    ]
    assert by_item["intervention"] == [
        [paris(at).isoformat(), (paris(at) + timedelta(minutes=m)).isoformat(),
         f"{m / 60:.4f}", f"call {call}"]
        for call, at, m, _ in ALICE_INTERVENTIONS
    ]  # fmt: skip
    assert by_item["on_call_hours_weekday"] == [["", "", f"{float(ALICE_WEEKDAY_H)}", ""]]
    assert by_item["on_call_hours_weekend"] == [["", "", f"{float(ALICE_WEEKEND_H)}", ""]]
    assert by_item["on_call_hours_holiday"] == [["", "", f"{float(ALICE_HOLIDAY_H)}", ""]]
    for name, amount in ALICE_PAY.items():
        assert by_item[f"amount_{name}"] == [["", "", "", f"{amount:.2f} EUR"]], name
    assert by_item["total"] == [["", "", "", f"{sum(ALICE_PAY.values()):.2f} EUR"]]
    # The hand figures hang together: the periods' 342 h (18 + 168 - 12 + 168) split by
    # day kind, 132 minutes of interventions, and a total of 847.
    on_call = ALICE_WEEKDAY_H + ALICE_WEEKEND_H + ALICE_HOLIDAY_H
    assert sum(float(h) for _, _, h in ALICE_PERIODS) == on_call == 342
    assert ALICE_MINUTES == 132 and sum(ALICE_PAY.values()) == pytest.approx(847.0)
    # Tue 26 23:10-23:30, then Wed 27 06:30: 7 h of rest, under the 11 h rule.
    assert by_item["warning"] == [["", "", "", "rest interrupted: intervention at "
                                   "2026-05-27 06:30 only 7.0 h after the previous one "
                                   "(rule: 11 h)"]]  # fmt: skip


def test_statement_csv_for_everyone(
    statement_db: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, url = statement_db
    code, out, err = run(capsys, "statement", "--month", "2026-05", "-c", config, "--url", url)
    assert code == 0, err
    rows = _rows(out)
    # The supervisor is on no rota but intervened: listed too.
    assert sorted({row[0] for row in rows}) == ["alice", "bob", "carol", "sup"]
    totals = {row[0]: row[6] for row in rows if row[2] == "total"}
    # bob: 3 periods (May 1-8, May 15-22, May 29 until the month's end);
    #   weekday 4 x 24 (4-7) + 6 + 4 x 24 (18-21) + 18 + 6 = 222 h,
    #   weekend 3 x 48 = 144 h, holiday 6 (May 1 from 18:00) + 18 (May 8) = 24 h;
    #   24 min at Tue 5 22:00 (night): 0.4 h x 30 x 1.25.
    bob = 3 * PER_PERIOD + 222 * WEEKDAY_RATE + 144 * WEEKEND_RATE + 24 * HOLIDAY_RATE
    bob += 0.4 * INTERVENTION_RATE * 1.25
    # carol: the override, Tue 12 20:00 - Wed 13 08:00, 12 weekday hours; her busy hop
    # is no intervention. sup: 10 min at Tue 12 22:30 (night), no period.
    carol = PER_PERIOD + 12 * WEEKDAY_RATE
    sup = 10 / 60 * INTERVENTION_RATE * 1.25
    assert totals == {"alice": "847.00 EUR", "bob": f"{bob:.2f} EUR",
                      "carol": f"{carol:.2f} EUR", "sup": f"{sup:.2f} EUR"}  # fmt: skip
    assert (bob, carol, sup) == (810.0, 28.0, 6.25)
    carol_periods = [row[3:] for row in rows if row[0] == "carol" and row[2] == "period"]
    assert carol_periods == [["2026-05-12T20:00:00+02:00", "2026-05-13T08:00:00+02:00",
                              "12.00", "maintenance/primary (override)"]]  # fmt: skip
    interventions = {p: sum(1 for r in rows if r[0] == p and r[2] == "intervention")
                     for p in ("alice", "bob", "carol", "sup")}  # fmt: skip
    assert interventions == {"alice": 6, "bob": 1, "carol": 0, "sup": 1}


def test_statement_csv_human_columns(
    statement_db: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, url = statement_db
    for lang, labels in (
        ("fr", {"period": "Période d'astreinte", "amount_on_call_weekday":
                "Montant : astreinte semaine", "total": "Total"}),
        ("en", {"period": "Period on call", "amount_on_call_weekday":
                "Amount: on call, weekday", "total": "Total"}),
    ):  # fmt: skip
        code, out, err = run(capsys, "statement", "--month", "2026-05", "--person", "alice",
                             "--lang", lang, "-c", config, "--url", url)  # fmt: skip
        assert code == 0, err
        rows = list(csv.reader(io.StringIO(out)))[1:]
        assert {row[8] for row in rows} == {"Alice Martin"}
        by_item = {row[2]: row[7] for row in rows}
        for item, words in labels.items():
            assert by_item[item] == words, (lang, item)
        assert all(row[7] and row[7] != row[2] for row in rows if row[2] != "total"), rows
