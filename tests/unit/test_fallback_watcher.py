"""The fallback spool watcher: it imports a call within two seconds of its end, keeps
the files while the database is down, and hands a call over once even if its files
cannot move - real directories, real databases."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.records import ImportedCall
from astreinte_ari.adapters.fallback.watcher import watch_fallback_spool
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.config.loader import load_config
from tests.unit.fallback_helpers import DID, T0, _config


class _Watched:
    """watch_fallback_spool over a real spool and a real SQLite database."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.config_file = _config(tmp_path, tmp_path / "spool")
        self.spool = tmp_path / "spool"
        self.engine = create_db_engine(db_url)
        self.writer = AuditWriter(self.engine)
        self.calls: list[ImportedCall] = []
        self.stop = asyncio.Event()

    def import_once(self) -> list[ImportedCall]:
        from astreinte_ari.adapters.fallback.importer import import_fallback_spool

        return import_fallback_spool(load_config(self.config_file), self.writer, self.engine)

    def start(self, **options: float) -> asyncio.Task[None]:
        return asyncio.create_task(
            watch_fallback_spool(
                lambda: self.spool, self.import_once, self.calls.append, stop=self.stop, **options
            )
        )

    async def until(self, condition: object, timeout: float = 5.0) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not condition():  # type: ignore[operator]
            assert loop.time() - start < timeout, "condition not met in time"
            await asyncio.sleep(0.02)
        return loop.time() - start

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    return url


def _write(spool: Path, key: str, steps: list[dict[str, object]]) -> None:
    spool.mkdir(exist_ok=True)
    with open(spool / f"{key}.jsonl", "a") as fh:
        fh.writelines(json.dumps(s) + "\n" for s in steps)


_RINGING = [
    {"event": "call", "at": T0, "arrived": T0 - 0.2, "did": DID, "line_name": "Demo"},
    {"event": "hop", "at": T0 + 0.1, "seq": 1, "person_id": "alice", "label": "primary"},
]
_ENDED = [
    {"event": "hop_end", "at": T0 + 6, "seq": 1, "dialstatus": "NOANSWER", "outcome": "no_answer"},
    {"event": "end", "at": T0 + 6.5, "outcome": "no_one", "detail": "nobody answered"},
]


async def test_watcher_imports_a_call_within_two_seconds_of_its_end(
    tmp_path: Path, sqlite_url: str
) -> None:
    w = _Watched(tmp_path, sqlite_url)
    task = w.start(interval_s=0.2)
    try:
        _write(w.spool, "1800000000.91", _RINGING)
        await asyncio.sleep(1.0)  # several polls: a ringing call is left alone
        assert w.calls == [] and (w.spool / "1800000000.91.jsonl").exists()
        _write(w.spool, "1800000000.91", _ENDED)
        took = await w.until(lambda: w.calls)
        assert took < 2.0
        [call] = w.calls
        assert (call.outcome, call.last_state) == (CallOutcome.NO_ONE, CallState.DIALING)
        assert call.started_at.timestamp() == pytest.approx(T0 - 0.2)
        assert call.person_ids == ("alice",) and call.did == DID
        assert not list(w.spool.glob("*.jsonl"))
    finally:
        w.stop.set()
        await task
        w.close()


async def test_watcher_keeps_files_while_the_database_is_down(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "audit.db"
    w = _Watched(tmp_path, sqlite_url)
    caplog.set_level(logging.INFO, logger="astreinte_ari.adapters.fallback.watcher")
    db.rename(tmp_path / "audit.db.away")
    db.mkdir()  # SQLite cannot open a directory: the database is "down"
    w.engine.dispose()
    task = w.start(interval_s=0.05)
    try:
        _write(w.spool, "1800000000.92", _RINGING + _ENDED)
        await asyncio.sleep(2.5)  # polls and retries (backoff 2 s)
        assert w.calls == [] and (w.spool / "1800000000.92.jsonl").exists()
        db.rmdir()
        (tmp_path / "audit.db.away").rename(db)
        await w.until(lambda: w.calls, timeout=10)
    finally:
        w.stop.set()
        await task
        w.close()
    messages = [r.getMessage() for r in caplog.records if r.name.endswith("watcher")]
    assert sum("fallback import failed" in m for m in messages) == 1, messages
    assert any("works again" in m for m in messages), messages
    assert [c.outcome for c in w.calls] == [CallOutcome.NO_ONE]


async def test_watcher_hands_a_call_over_once_even_if_its_files_cannot_move(
    tmp_path: Path, sqlite_url: str
) -> None:
    w = _Watched(tmp_path, sqlite_url)
    _write(w.spool, "1800000000.93", _RINGING + _ENDED)
    (w.spool / "imported").write_text("")  # a file where the imported/ folder goes
    task = w.start(interval_s=0.05, recheck_s=0.1)
    try:
        await w.until(lambda: w.calls)
        await asyncio.sleep(0.5)  # re-imported (no-op) several times meanwhile
    finally:
        w.stop.set()
        await task
        w.close()
    assert len(w.calls) == 1 and (w.spool / "1800000000.93.jsonl").exists()
    shutil.rmtree(w.spool)
