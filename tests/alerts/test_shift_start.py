"""Shift start ("prise de poste") not acknowledged: supervisor and replacement alerted;
the replacement's acknowledgement routes that shift's calls to them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from astreinte_ari.alerting.shifts import shift_states
from astreinte_ari.devtools.localpbx import free_port
from astreinte_ari.routing.router import build_plan
from astreinte_ari.schedule.rota import who_is_on_call
from tests.alerts.conftest import FakeClock, SmsGateway
from tests.alerts.helpers import LINE, P2, P3, SUP, start_without_telephony, write_config

SHIFT = "[{team: t, rota: primary, before: 30m, ack_within: 20m, supervisor: sup, replacement: p2}]"


async def test_unacknowledged_shift_start_alerts_replacement_who_gets_the_calls(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    config = write_config(
        tmp_path,
        db_url=db_url,
        sms_url=sms_gateway.url,
        links_port=free_port(),
        channels="{p1: [{via: sms}], p2: [{via: sms}], p3: [{via: sms}], sup: [{via: sms}]}",
        shift_start=SHIFT,
        primary="[p3, p1]",
    )
    clock = FakeClock()
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)  # 07:00 in Paris; handoff at 08:00
    handoff = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    team = config.teams["t"]
    assert who_is_on_call(team, "primary", handoff) == "p3"
    alerting = await start_without_telephony(config, clock)
    try:
        store = alerting.engine.store
        assert await alerting.plan_shifts() == 0  # planned at start already; idempotent
        clock.advance(minutes=29)
        assert await alerting.fire_due() == 0
        clock.advance(minutes=1)  # 30 minutes before the handoff
        await alerting.fire_due()
        await alerting.engine.drain()
        assert len(sms_gateway.texts_to(P3)) == 1
        assert sms_gateway.texts_to(P2) == [] and sms_gateway.texts_to(SUP) == []
        [state] = [s for s in shift_states(config, store, clock()) if s.shift.start == handoff]
        assert state.status == "waiting for confirmation"

        clock.advance(minutes=20)  # the deadline passes without an acknowledgement
        await alerting.fire_due()
        await alerting.engine.drain()
        assert len(sms_gateway.texts_to(P2)) == 1  # the designated replacement
        assert len(sms_gateway.texts_to(SUP)) == 1  # and the supervisor
        shift_alert = store.find_shift("shift_start", "t", "primary", handoff)
        assert shift_alert is not None and shift_alert.state == "expired"

        # Before anyone acknowledges, calls follow the rota.
        plan = build_plan(config, LINE, handoff, on_call_override=alerting.on_call_override)
        assert plan is not None and plan.hops[0].person_id == "p3"
        ack = re.search(r"(http://\S+/ack/\S+)", sms_gateway.texts_to(P2)[0])
        assert ack
        async with aiohttp.ClientSession() as http, http.post(ack.group(1)) as response:
            assert response.status == 200
        plan = build_plan(config, LINE, handoff, on_call_override=alerting.on_call_override)
        assert plan is not None and plan.hops[0].person_id == "p2"
        # ... for that shift only (the next day, the rota again).
        next_day = datetime(2026, 3, 3, 7, 30, tzinfo=UTC)
        plan = build_plan(config, LINE, next_day, on_call_override=alerting.on_call_override)
        assert plan is not None and plan.hops[0].person_id != "p2"
        [state] = [s for s in shift_states(config, store, clock()) if s.shift.start == handoff]
        assert state.status == "replaced by p2"
        events = [e[1] for e in store.events(shift_alert.id)]
        assert events == ["scheduled", "opened", "notified", "expired"]
    finally:
        await alerting.close()

    # A restarted service (new process) still routes to the replacement.
    again = await start_without_telephony(config, clock)
    try:
        plan = build_plan(config, LINE, handoff, on_call_override=again.on_call_override)
        assert plan is not None and plan.hops[0].person_id == "p2"
    finally:
        await again.close()


async def test_live_config_edit_reaches_alerting(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    """The running service swaps its configuration on a valid YAML edit; alerting
    follows: a shift-start rule added by the edit is planned at once."""
    links_port = free_port()
    before = write_config(tmp_path, db_url=db_url, sms_url=sms_gateway.url,
                          links_port=links_port, primary="[p3, p1]")  # fmt: skip
    clock = FakeClock()
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    handoff = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    alerting = await start_without_telephony(before, clock)
    try:
        store = alerting.engine.store
        assert store.find_shift("shift_start", "t", "primary", handoff) is None
        after = write_config(tmp_path, db_url=db_url, sms_url=sms_gateway.url,
                             links_port=links_port, shift_start=SHIFT, primary="[p3, p1]",
                             channels="{p3: [{via: sms}], sup: [{via: sms}]}")  # fmt: skip
        await alerting.use_config(after)
        planned = store.find_shift("shift_start", "t", "primary", handoff)
        assert planned is not None and planned.chain == ("p3",)
        assert alerting.engine.alerting.channels_for("p1") == after.alerting.default_channels  # type: ignore[union-attr]
        clock.advance(minutes=30)
        await alerting.fire_due()
        await alerting.engine.drain()
        assert len(sms_gateway.texts_to(P3)) == 1
    finally:
        await alerting.close()
