"""Where a restarted service finds a call it resumes: the database, completed by the
journal - even when the journal's replay commits (and the journal is compacted)
while the database is being read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Engine

from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.app import store_edges
from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.recovery import ResumePoint

CHANNEL = "1796137780.1030"
CHOICE = "menu: key 2 → Agent two (+33180000008)"


def test_a_choice_replayed_while_the_database_is_read_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_id = call_id_for_channel(CHANNEL)
    at = datetime(2026, 12, 1, 15, 9, 41, tzinfo=UTC)
    choice = StateChanged(call_id, 2, CallState.MENU, CallState.DIALING, CHOICE, at)
    writer = SimpleNamespace(replayed_events=[choice])

    def read_before_the_replay_commits(engine: Any, channel_id: str) -> ResumePoint:
        # The replay commits and the journal thread compacts meanwhile: the list the
        # writer holds is emptied, and this read saw the database without the choice.
        writer.replayed_events = []
        return ResumePoint(call_id, 1, 0, ())

    monkeypatch.setattr(store_edges, "resume_point_for_channel", read_before_the_replay_commits)
    lookup = store_edges.resume_lookup(cast(Engine, None), cast(JournaledAuditWriter, writer))
    point = asyncio.run(lookup(CHANNEL))
    assert point is not None
    assert (point.last_seq, point.menu_reason) == (2, CHOICE)
