"""SQLite stores times as text: `audit verify` reads SQLAlchemy's usual form as
`iso()` written by SQLite itself, and any other stored form through `stored_iso`,
as before that shortcut. The same instant in another form is no finding; another
instant is one, in the chain and in each domain table."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from astreinte_ari.adapters.store.audit_verify import verify
from tests.unit.test_audit_log import CALL_ID, _sql, engine, filled  # noqa: F401

HOP = f"{CALL_ID[:8]}-hop-1"
SQLITE_ONLY = pytest.mark.parametrize("blank_db_url", ["sqlite"], indirect=True)
SAME_INSTANT = [  # SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff' rewritten, same instant
    "UPDATE audit_log SET at = replace(at, ' ', 'T') || '+00:00' WHERE seq = 3",
    "UPDATE audit_log SET at = replace(at, ' ', 'T') || '+00:00' WHERE seq = 4",
    "UPDATE calls SET started_at = replace(started_at, ' ', 'T') WHERE id = :call",
    "UPDATE hops SET started_at = started_at || '+00:00' WHERE id = :hop",
    "UPDATE call_transitions SET at = replace(at, ' ', 'T') WHERE call_id = :call",
]


@SQLITE_ONLY
@pytest.mark.parametrize("second_process", [False, True])
def test_the_same_instant_stored_in_another_form_is_no_finding(
    filled: Engine,  # noqa: F811
    second_process: bool,
) -> None:
    for statement in SAME_INSTANT:
        _sql(filled, statement, call=CALL_ID, hop=HOP)
    report = verify(filled, second_process=second_process)
    assert report.ok, report.problems
    assert report.records > 0 and report.hops > 0 and report.transitions > 0


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("statement", "where", "what"),
    [
        (
            "UPDATE audit_log SET at = substr(at, 1, 19) || '.000001' WHERE seq = 3",
            "audit_log seq 3",
            "content does not match its hash",
        ),
        (
            "UPDATE hops SET started_at = replace(started_at, ' ', 'T') || '-01:00' "
            "WHERE id = :hop",
            f"hops {HOP}",
            "started_at is '",
        ),
        (
            "UPDATE call_transitions SET at = substr(at, 1, 19) WHERE call_id = :call AND seq = 1",
            f"call_transitions {CALL_ID} #1",
            "at differs from the log",
        ),
        (
            "UPDATE calls SET ended_at = replace(ended_at, ' ', 'T') || '+01:00' WHERE id = :call",
            f"calls {CALL_ID}",
            "ended_at is '",
        ),
    ],
)
def test_another_instant_in_another_form_is_found(
    filled: Engine,  # noqa: F811
    statement: str,
    where: str,
    what: str,
) -> None:
    _sql(filled, statement, call=CALL_ID, hop=HOP)
    for second_process in (False, True):
        report = verify(filled, second_process=second_process)
        found = [(p.where, p.what) for p in report.problems]
        assert any(w.startswith(where) and what in t for w, t in found), found
