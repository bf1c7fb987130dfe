"""Prometheus endpoint (aiohttp test client) and the statement arithmetic (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from astreinte_ari.adapters.metrics.prometheus import METRICS_KEY, ServiceMetrics, metrics_handler
from astreinte_ari.callflow.audit_events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopStarted,
)
from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.config.reporting import CompensationConfig
from astreinte_ari.reports.statement import (
    Intervention,
    Period,
    Statement,
    compensate,
    hours_by_day_kind,
    majoration,
    month_bounds,
)

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


async def test_metrics_endpoint() -> None:
    metrics = ServiceMetrics()
    metrics.on_audit_event(CallStarted("c1", "+331", "L", "night", "+336", "", "ch", T0))
    metrics.on_audit_event(HopStarted("c1", "h1", 1, "primary", "alice", "A", "+336", T0))
    metrics.on_audit_event(HopEnded("h1", HopOutcome.BUSY, T0, cause_code=17))
    metrics.on_audit_event(HopStarted("c1", "h2", 2, "backup", "bob", "B", "+337", T0))
    metrics.on_audit_event(HopEnded("h2", HopOutcome.ACCEPTED, T0))
    metrics.on_audit_event(CallAnswered("c1", "h2", "bob", T0 + timedelta(seconds=12)))
    plan = SimpleNamespace(line_name="L")
    metrics.on_call_closed(SimpleNamespace(call_id="c1", outcome=CallOutcome.ACCEPTED, plan=plan))
    metrics.set_open_alerts(3)
    metrics.set_ari_connected(True)
    metrics.set_config_version("v7", "astreinte.yaml")
    app = web.Application()
    app[METRICS_KEY] = metrics
    app.router.add_get("/metrics", metrics_handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        body = await response.text()
    for line in (
        'astreinte_calls_total{outcome="accepted"} 1.0',
        'astreinte_hops_total{cause="17",line="L",outcome="busy"} 1.0',
        'astreinte_hops_total{cause="none",line="L",outcome="accepted"} 1.0',
        'astreinte_time_to_answer_seconds_bucket{le="15.0",line="L"} 1.0',
        'astreinte_time_to_answer_seconds_bucket{le="10.0",line="L"} 0.0',
        "astreinte_open_alerts 3.0",
        "astreinte_ari_connected 1.0",
        'astreinte_config_info{source="astreinte.yaml",version="v7"} 1.0',
    ):
        assert line in body


async def test_metrics_per_line_reconnects_deliveries_and_process() -> None:
    from astreinte_ari.adapters.metrics.alerts import MeteredNotifier
    from astreinte_ari.alerting.ports import AlertMessage, Delivery, NotifyError, Recipient

    metrics = ServiceMetrics()
    plan = SimpleNamespace(line_name="Maintenance")
    metrics.on_call_closed(SimpleNamespace(call_id="c1", outcome=CallOutcome.ACCEPTED, plan=plan))
    metrics.set_ari_connected(True)  # the first connection is not a reconnect
    metrics.set_ari_connected(False)
    metrics.set_ari_connected(True)
    metrics.set_ari_connected(True)  # still up: not another one

    class Sms:
        channel = "sms"

        def __init__(self, fail: bool) -> None:
            self.fail = fail

        async def send(self, *args: object) -> Delivery:
            if self.fail:
                raise NotifyError("gateway down")
            return Delivery("sent")

    who = Recipient("p1", "P1", "+33600000001", None)
    message = AlertMessage("a1", "missed_call", "s", "t", "fr")
    await MeteredNotifier(Sms(False), metrics).send(who, message)
    with pytest.raises(NotifyError):
        await MeteredNotifier(Sms(True), metrics).send(who, message)
    body = metrics.render().decode()
    for line in (
        'astreinte_line_calls_total{line="Maintenance",outcome="accepted"} 1.0',
        "astreinte_ari_reconnects_total 1.0",
        'astreinte_alert_deliveries_total{channel="sms",result="sent"} 1.0',
        'astreinte_alert_deliveries_total{channel="sms",result="failed"} 1.0',
    ):
        assert line in body, body
    assert "process_resident_memory_bytes" in body and "python_gc_objects_collected_total" in body


def test_metrics_backlog_imports_reloads_and_bounded_labels() -> None:
    metrics = ServiceMetrics()
    backlog = {"events": 7, "bytes": 2048, "imported": 3}
    metrics.sample(
        journal_events=lambda: backlog["events"],
        journal_bytes=lambda: backlog["bytes"],
        fallback_imported=lambda: backlog["imported"],
    )
    metrics.on_config_reload(applied=True)
    metrics.on_config_reload(applied=False)
    body = metrics.render().decode()
    for line in (
        "astreinte_journal_backlog_events 7.0",
        "astreinte_journal_backlog_bytes 2048.0",
        "astreinte_fallback_calls_imported_total 3.0",
        'astreinte_config_reloads_total{result="applied"} 1.0',
        'astreinte_config_reloads_total{result="refused"} 1.0',
        "astreinte_config_last_reload_ok 0.0",
    ):
        assert line in body, body
    backlog["events"] = 0  # read at scrape time, not copied
    assert "astreinte_journal_backlog_events 0.0" in metrics.render().decode()

    def broken() -> int:
        raise OSError("journal closed")

    metrics.sample(journal_bytes=broken)  # one failing reading spares the rest of the page
    body = metrics.render().decode()
    assert "astreinte_journal_backlog_bytes" not in body
    assert "astreinte_fallback_calls_imported_total 3.0" in body

    # Lines come from the configuration; past MAX_LINES distinct names, one "(other)".
    from astreinte_ari.adapters.metrics.prometheus import MAX_LINES, OTHER_LINE

    for n in range(MAX_LINES + 5):
        plan = SimpleNamespace(line_name=f"line-{n}")
        closed = SimpleNamespace(call_id=f"c{n}", outcome=CallOutcome.ABANDONED, plan=plan)
        metrics.on_call_closed(closed)
    body = metrics.render().decode()
    assert body.count("astreinte_line_calls_total{") == MAX_LINES + 1
    assert f'astreinte_line_calls_total{{line="{OTHER_LINE}",outcome="abandoned"}} 5.0' in body
    # Causes are Q.850 codes; anything else is one "invalid" label.
    metrics.on_audit_event(CallStarted("x", "+331", "line-0", "night", "+336", "", "ch", T0))
    metrics.on_audit_event(HopStarted("x", "hx", 1, "primary", "alice", "A", "+336", T0))
    metrics.on_audit_event(HopEnded("hx", HopOutcome.UNREACHABLE, T0, cause_code=99999))
    metrics.on_audit_event(CallEnded("x", CallOutcome.NO_ONE, T0, "every hop failed"))
    body = metrics.render().decode()
    assert 'astreinte_hops_total{cause="invalid",line="line-0",outcome="unreachable"} 1.0' in body
    assert not metrics._call_line and not metrics._hop_line and not metrics._started


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-12-04 18:00", "2026-12-05 18:00", {"weekday": 6, "weekend": 18, "holiday": 0}),
        ("2026-12-24 18:00", "2026-12-26 08:00", {"weekday": 6, "weekend": 8, "holiday": 24}),
        # DST: the night of 2026-03-28/29 Sunday has 23 hours.
        ("2026-03-28 00:00", "2026-03-30 00:00", {"weekday": 0, "weekend": 47, "holiday": 0}),
    ],
)
def test_hours_by_day_kind(start: str, end: str, expected: dict[str, float]) -> None:
    holidays = {datetime(2026, 12, 25).date()}
    assert hours_by_day_kind(_utc(start), _utc(end), PARIS, holidays) == expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [("2026-12-02 14:00", 0.0), ("2026-12-02 23:30", 0.25), ("2026-12-05 14:00", 0.5),
     ("2026-12-25 03:00", 1.0), ("2026-12-02 05:59", 0.25), ("2026-12-02 06:00", 0.0)],
)  # fmt: skip
def test_majoration_takes_the_largest(local: str, expected: float) -> None:
    config = CompensationConfig(majorations={"night": 0.25, "weekend": 0.5, "holiday": 1.0})
    holidays = {datetime(2026, 12, 25).date()}
    assert majoration(_utc(local), PARIS, config, holidays) == expected


def test_statement_amounts_and_rest_warning() -> None:
    config = CompensationConfig(
        per_period=50, on_call_hourly={"weekday": 1, "weekend": 2, "holiday": 3},
        intervention_hourly=20, majorations={"night": 0.5}, holidays="FR", rest_hours=11,
    )  # fmt: skip
    start, end = month_bounds("2026-12", PARIS)
    assert start == _utc("2026-12-01 00:00") and end == _utc("2027-01-01 00:00")
    st = Statement("alice", "2026-12", "EUR")
    st.periods = [Period(_utc("2026-12-04 18:00"), _utc("2026-12-11 18:00"), "m", "p", "rotation")]
    st.interventions = [
        Intervention("c1", _utc("2026-12-08 23:00"), _utc("2026-12-08 23:30")),  # night
        Intervention("c2", _utc("2026-12-09 08:00"), _utc("2026-12-09 09:00")),  # 8.5 h later
    ]
    compensate(st, PARIS, config)
    assert st.on_call_hours == {"weekday": 120.0, "weekend": 48.0, "holiday": 0.0}
    assert st.amounts == {"periods": 50.0, "on_call_weekday": 120.0, "on_call_weekend": 96.0,
                          "on_call_holiday": 0.0, "interventions": 35.0}  # fmt: skip
    assert st.total == 301.0
    assert len(st.warnings) == 1 and "8.5 h" in st.warnings[0]
