"""RotaChanges (app/rota_changes.py) over the real store, on SQLite and PostgreSQL:
every step in the table and in the audit chain together, races, labour refusals at
approval time, the overlay the service keeps and its refresh."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.rota_changes import RotaChangeStore
from astreinte_ari.app.compose import rota_changes_service
from astreinte_ari.app.rota_changes import (
    ChangeOverlay,
    RotaChanges,
    keep_changes_applied,
    overrides_by_team,
)
from astreinte_ari.config.model import AppConfig
from astreinte_ari.schedule.changes import ChangeNotAllowed, ChangeNotFound, ChangeRefused
from astreinte_ari.schedule.rota import who_is_on_call
from tests.unit.rota_changes_helpers import NOW, PARIS, STRICT, load, local

SATURDAY_NOON = local("2026-03-07 12:00")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def service(engine: Engine, config: AppConfig, **kw: Any) -> RotaChanges:
    return RotaChanges(RotaChangeStore(engine), lambda: config, Clock(), **kw)


def trail(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    table = audit_log_table
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.kind, table.c.subject_id, table.c.payload)
            .where(table.c.kind.like("rota_change.%"))
            .order_by(table.c.seq)
        ).all()
    return [(kind, subject, json.loads(payload)) for kind, subject, payload in rows]


def ask_cover(changes: RotaChanges, actor: str = "a") -> str:
    return changes.request(
        actor=actor, team="t", rota="week", kind="cover",
        start=local("2026-03-07 10:00"), end=local("2026-03-07 16:00"), reason="family visit",
    ).id  # fmt: skip


def test_cover_requested_approved_and_audited(engine: Engine, tmp_path: Path) -> None:
    approved: list[int] = []
    changes = service(engine, load(tmp_path), on_approved=lambda: approved.append(1))
    rid = ask_cover(changes)
    (pending,) = changes.list(status="requested")
    assert (pending.id, pending.counterpart, pending.reason) == (rid, "b", "family visit")
    assert pending.start == local("2026-03-07 10:00") and pending.start.tzinfo is not None
    assert changes.overrides("t") == ()
    done = changes.approve(rid, actor="m", as_manager=True, note="fine")
    assert done.status == "approved" and approved == [1]
    (override,) = changes.overrides("t")
    assert (override.person, override.requested_by) == ("a", "a")
    assert override.reason == f"web change {rid}, approved by m: family visit"
    stored = changes.list(team="t", person="a")[0]
    assert (stored.status, stored.decided_by, stored.decision_note) == ("approved", "m", "fine")
    steps = trail(engine)
    assert [(k, s) for k, s, _ in steps] == [
        ("rota_change.requested", rid), ("rota_change.approved", rid),
    ]  # fmt: skip
    first, second = steps[0][2], steps[1][2]
    assert (first["by"], first["reason"], first["counterpart"]) == ("a", "family visit", "b")
    assert (second["by"], second["note"], second["status"]) == ("m", "fine", "approved")
    assert verify(engine, open_after=None).ok


def test_swap_consent_then_approval(engine: Engine, tmp_path: Path) -> None:
    changes = service(engine, load(tmp_path))
    request = changes.request(
        actor="b", team="t", rota="week", kind="swap", counterpart="c",
        start=local("2026-03-04 08:00"), end=local("2026-03-05 08:00"),
        swap_start=local("2026-03-10 08:00"), swap_end=local("2026-03-10 18:00"),
    )  # fmt: skip
    with pytest.raises(ChangeNotAllowed):
        changes.consent(request.id, actor="a")
    agreed = changes.consent(request.id, actor="c")
    assert agreed.status == "requested" and agreed.consented
    changes.approve(request.id, actor="m", as_manager=True)
    assert [k for k, _, _ in trail(engine)] == [
        "rota_change.requested", "rota_change.consented", "rota_change.approved",
    ]  # fmt: skip
    assert [o.person for o in changes.overrides("t")] == ["c", "b"]


def test_consent_alone_approves_when_configured(engine: Engine, tmp_path: Path) -> None:
    changes = service(engine, load(tmp_path, "    changes: {manager_approval: false}\n"))
    request = changes.request(
        actor="b", team="t", rota="week", kind="swap", counterpart="c",
        start=local("2026-03-04 08:00"), end=local("2026-03-05 08:00"),
    )  # fmt: skip
    done = changes.consent(request.id, actor="c")
    assert (done.status, done.decided_by) == ("approved", "c")
    assert [k for k, _, _ in trail(engine)][-2:] == [
        "rota_change.consented",
        "rota_change.approved",
    ]


def test_state_machine_through_the_store(engine: Engine, tmp_path: Path) -> None:
    changes = service(engine, load(tmp_path))
    rid = ask_cover(changes)
    with pytest.raises(ChangeNotAllowed):
        changes.cancel(rid, actor="b")
    changes.cancel(rid, actor="a")
    with pytest.raises(ChangeRefused) as exc:
        changes.approve(rid, actor="m", as_manager=True)
    assert exc.value.rule == "state"
    refused = ask_cover(changes)
    changes.refuse(refused, actor="m", as_manager=True, note="short-staffed")
    with pytest.raises(ChangeRefused, match="refused"):
        changes.approve(refused, actor="n", as_manager=True)
    twice = ask_cover(changes)
    changes.approve(twice, actor="m", as_manager=True)
    with pytest.raises(ChangeRefused, match="approved"):
        changes.approve(twice, actor="n", as_manager=True)
    with pytest.raises(ChangeNotFound) as missing:
        changes.approve("nope", actor="m", as_manager=True)
    assert missing.value.rule == "not_found" and isinstance(missing.value, LookupError)
    assert [k.split(".")[1] for k, _, _ in trail(engine)] == [
        "requested", "cancelled", "requested", "refused", "requested", "approved",
    ]  # fmt: skip
    assert [r.status for r in changes.list()] == ["cancelled", "refused", "approved"]
    with pytest.raises(ChangeRefused, match="status must be one of"):
        changes.list(status="done")


def test_a_racing_second_approval_loses(engine: Engine, tmp_path: Path) -> None:
    config = load(tmp_path)
    first, second = service(engine, config), service(engine, config)
    rid = ask_cover(first)
    stale = second.store.get(rid)
    first.approve(rid, actor="m", as_manager=True)
    approved = first.store.get(rid)
    with pytest.raises(ChangeRefused, match="changed meanwhile") as exc:
        second.store.update(stale, approved, actor="n", step="approved")
    assert exc.value.rule == "state"
    assert len([k for k, _, _ in trail(engine) if k == "rota_change.approved"]) == 1


def test_labour_refusal_at_request_stores_nothing(engine: Engine, tmp_path: Path) -> None:
    changes = service(engine, load(tmp_path, STRICT))
    with pytest.raises(ChangeRefused) as exc:
        changes.request(
            actor="a", team="t", rota="week", kind="cover",
            start=local("2026-03-03 20:00"), end=local("2026-03-03 22:00"),
        )  # fmt: skip
    assert exc.value.rule == "double_booking"
    assert changes.list() == [] and trail(engine) == []


def test_labour_rechecked_at_approval(engine: Engine, tmp_path: Path) -> None:
    """Two covers of overlapping nights by a: each lawful alone, the second refused
    once the first is approved."""
    changes = service(engine, load(tmp_path, STRICT))
    kw: dict[str, Any] = {
        "team": "t",
        "kind": "cover",
        "start": local("2026-03-10 20:00"),
        "end": local("2026-03-10 22:00"),
    }
    first = changes.request(actor="a", rota="nights", **kw)
    second = changes.request(actor="a", rota="week", **kw)
    changes.approve(first.id, actor="m", as_manager=True)
    with pytest.raises(ChangeRefused) as exc:
        changes.approve(second.id, actor="m", as_manager=True)
    assert exc.value.rule == "double_booking"
    stored = changes.store.get(second.id)
    assert (stored.status, stored.decided_by) == ("refused", "system")
    assert stored.decision_note.startswith("[double_booking]")
    assert trail(engine)[-1][2]["by"] == "system"


def test_unknown_team(engine: Engine, tmp_path: Path) -> None:
    changes = service(engine, load(tmp_path))
    with pytest.raises(ChangeRefused, match="unknown team 'x'"):
        changes.request(actor="a", team="x", rota="week", kind="cover",
                        start=SATURDAY_NOON, end=SATURDAY_NOON + timedelta(hours=1))  # fmt: skip


def test_composed_service_applies_an_approval_at_once(engine: Engine, tmp_path: Path) -> None:
    config = load(tmp_path)
    overlay = ChangeOverlay(config)
    store = RotaChangeStore(engine)
    changes = rota_changes_service(
        engine,
        lambda: overlay.yaml,
        on_approved=lambda: overlay.use_changes(overrides_by_team(store.list(status="approved"))),
        clock=Clock(),
    )
    rid = ask_cover(changes)
    assert who_is_on_call(overlay.current.teams["t"], "week", SATURDAY_NOON) == "b"
    changes.approve(rid, actor="m", as_manager=True)
    assert who_is_on_call(overlay.current.teams["t"], "week", SATURDAY_NOON) == "a"
    # A YAML reload keeps the approved change on top of the new file.
    overlay.use_yaml(load(tmp_path, "    changes: {self_approval: true}\n"))
    assert who_is_on_call(overlay.current.teams["t"], "week", SATURDAY_NOON) == "a"
    assert overlay.current.teams["t"].changes.self_approval


# -- the refresh loop ---------------------------------------------------------------


async def test_refresh_follows_the_database_and_survives_an_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load(tmp_path)
    team = config.teams["t"]
    from astreinte_ari.schedule import changes as rules

    approved = rules.approve(
        team, rules.new_request("t", team, request_id="r1", actor="a", rota="week",
                                kind="cover", start=local("2026-03-07 10:00"),
                                end=local("2026-03-07 16:00"), now=NOW),
        "m", as_manager=True, now=NOW,
    )  # fmt: skip
    answers: list[object] = [{}, {"t": approved.overrides()}, OSError("db down"), OSError("x")]
    reads = asyncio.Event()
    applied: list[int] = []

    def read() -> dict[str, Any]:
        answer = answers.pop(0) if answers else {"t": approved.overrides()}
        if not answers:
            reads.set()
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    async def on_applied() -> None:
        applied.append(1)

    overlay = ChangeOverlay(config)
    caplog.set_level(logging.INFO, "astreinte_ari.app.rota_changes")
    task = asyncio.create_task(keep_changes_applied(overlay, read, lambda: 0.001, on_applied))
    try:
        await asyncio.wait_for(reads.wait(), 10)
        assert who_is_on_call(overlay.current.teams["t"], "week", SATURDAY_NOON) == "a"
        while len([r for r in caplog.records if "readable again" in r.message]) < 1:
            await asyncio.sleep(0.001)
    finally:
        task.cancel()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeping the last ones" in warnings[0].message
    assert applied == [1]  # once for the change, not for every poll nor the outage


def test_overlay_reports_whether_the_changes_differ(tmp_path: Path) -> None:
    overlay = ChangeOverlay(load(tmp_path))
    assert overlay.use_changes({}) is False
    assert overlay.current is overlay.yaml


def test_an_approval_stands_when_applying_it_at_once_fails(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise OSError("overlay unavailable")

    changes = service(engine, load(tmp_path), on_approved=broken)
    rid = ask_cover(changes)
    assert changes.approve(rid, actor="m", as_manager=True).status == "approved"
    assert changes.store.get(rid).status == "approved"
    assert f"change {rid} approved but not applied at once" in caplog.text


async def test_fallback_plan_cache_follows_the_approved_changes(tmp_path: Path) -> None:
    """Bound to the YAML's hash, the cache would keep the old holder: rewritten."""
    from astreinte_ari.adapters.fallback.plancache import CACHE_NAME
    from astreinte_ari.app.features import DatabaseFeatures, LiveConfig
    from astreinte_ari.config.rotas import Override

    spool = tmp_path / "spool"
    config = load(tmp_path, "").model_copy(
        update={"fallback": load(tmp_path).fallback.model_copy(update={"spool_dir": spool})}
    )
    live = LiveConfig(config)
    now = datetime.now(PARIS)
    taken = Override.model_validate(
        {"rota": "week", "person": "a", "from": now - timedelta(hours=1),
         "to": now + timedelta(hours=3), "reason": "web change x"}
    )  # fmt: skip
    assert live.use_changes({"t": (taken,)})
    features = DatabaseFeatures(
        config=config, live=live, engine=None, metrics=None, service=None,  # type: ignore[arg-type]
        alert_feed=None, clock=lambda: now.astimezone(UTC),  # type: ignore[arg-type]
    )  # fmt: skip
    await features.follow_rota_changes()
    cached = json.loads((spool / CACHE_NAME).read_text())

    def people(node: object) -> set[str]:
        if isinstance(node, dict):
            found = {node["person_id"]} if "person_id" in node else set()
            return found.union(*(people(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(people(v) for v in node))
        return set()

    assert "a" in people(cached)  # only the approved change puts a on the week rota
