"""A line's menu on a real Asterisk: the sipp caller presses 2 (RFC 4733) during the
prompt and the second line's agent is rung, not the first's; pressing nothing, the
default line's agent is rung once the prompt and the menu's 2 s are over. The
trail says which key (or none) chose what."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.queries import CallDetail
from astreinte_ari.devtools.localpbx import SOUNDS_DIR
from tests.e2e.fault_scenarios import reached
from tests.e2e.rig import (
    LINE_MENU,
    MENU_PROMPT,
    P1,
    P2,
    E2ERig,
    ServiceProcess,
    finish,
    now_utc,
    sqlite_service,
)
from tests.rig.polling import wait_until

pytestmark = pytest.mark.e2e

PROMPT_S = ((SOUNDS_DIR / "fr" / f"{MENU_PROMPT}.wav").stat().st_size - 44) / 16000
MENU_TIMEOUT_S = 2  # LINE_MENU's menu.timeout


def _reason(call: CallDetail, to_state: str, n: int = 1) -> tuple[str, float]:
    """The n-th transition to `to_state`: its reason, and when (s after the call began)."""
    seen = [t for t in call.transitions if t.to_state == to_state]
    assert len(seen) >= n, [(t.to_state, t.reason) for t in call.transitions]
    return seen[n - 1].reason, (seen[n - 1].at - call.started_at).total_seconds()


def _answered_call(
    rig: E2ERig, service: ServiceProcess, agent: str, keys: list[tuple[int, str]]
) -> CallDetail:
    since = now_utc()
    phone = rig.phone(agent, rig.agent("accept", ring_ms=300, dtmf_after_ms=500))
    caller = rig.call(LINE_MENU, hold_ms=15000, keys=keys)
    rig.wait_for_bridge("astreinte-agent-", timeout=25)
    finish(caller, phone)
    call = service.wait_for_call(since, LINE_MENU)
    assert call.outcome == "accepted", call.outcome_detail
    return call


def test_the_callers_key_chooses_whom_the_menu_rings(e2e_rig: E2ERig, tmp_path: Path) -> None:
    with sqlite_service(e2e_rig, tmp_path, menu_line=True) as service:
        # Key 2 one second into the prompt (barge-in): agent two's line.
        call = _answered_call(e2e_rig, service, P2, [(1000, "2")])
        assert [h.number for h in call.hops] == [P2]  # p1 (the default's) never rung
        why, at = _reason(call, "dialing")
        assert why == "menu: key 2 → Agent two (+33180000008)"
        assert at < PROMPT_S, at  # the key cut the prompt short
        assert _reason(call, "menu")[0].startswith(f"menu {MENU_PROMPT}: 1 Short, 2 Agent two")

        # No key: the default (LINE_SHORT, p1 first) after the prompt and 2 s.
        call = _answered_call(e2e_rig, service, P1, [])
        assert [h.number for h in call.hops] == [P1]
        why, at = _reason(call, "dialing")
        assert why == "menu: no key within 2 s → default 1 Short"
        assert PROMPT_S + MENU_TIMEOUT_S - 0.5 < at < PROMPT_S + MENU_TIMEOUT_S + 2.0, at


def test_a_crash_after_the_choice_keeps_the_chosen_line(e2e_rig: E2ERig, tmp_path: Path) -> None:
    """Killed while key 2's agent rings, the restarted service goes on with key 2's
    line (no hop left: it hangs up), not with the default line's next hop (sup)."""
    with sqlite_service(e2e_rig, tmp_path, menu_line=True, clean_stop=False) as service:
        since = now_utc()
        ringing = e2e_rig.phone(P2, e2e_rig.agent("noanswer"))
        caller = e2e_rig.call(LINE_MENU, hold_ms=20000, keys=[(1000, "2")])
        wait_until(lambda: _agent_ringing(e2e_rig), timeout=20, what="key 2's agent ringing")
        service.signal(signal.SIGKILL)
        service.start()
        finish(caller, ringing)  # p2's phone: CANCEL; the caller: BYE from the PBX
        call = service.wait_for_call(since, LINE_MENU)
    assert [(h.number, h.outcome) for h in call.hops] == [(P2, "failed")]  # sup never rung
    assert "restart" in (call.hops[0].cause_text or "")
    reasons = [t.reason for t in call.transitions]
    assert "menu: resumed after a restart → key 2 Agent two, as chosen" in reasons, reasons
    assert call.outcome == "no_one", (call.outcome, call.outcome_detail)


def test_a_crash_before_the_choice_asks_the_caller_again(e2e_rig: E2ERig, tmp_path: Path) -> None:
    """Killed during the prompt, before any key: the restarted service plays the menu
    again and the caller's key chooses (a key pressed while no process listened is
    lost: imposing the default would send the caller to the wrong service)."""
    number = "+33199000077"
    with sqlite_service(e2e_rig, tmp_path, menu_line=True, clean_stop=False) as service:
        since = now_utc()
        phone = e2e_rig.phone(P2, e2e_rig.agent("accept", ring_ms=300, dtmf_after_ms=500))
        # Key 2 from 7 s on, every 3 s: as a caller does once they hear the prompt again.
        keys = [(7000, "2"), (3000, "2"), (3000, "2")]
        caller = e2e_rig.call(LINE_MENU, hold_ms=3000, caller=number, keys=keys)
        wait_until(lambda: reached(service, number, "menu"), timeout=15, what="call in menu")
        service.signal(signal.SIGKILL)
        service.start()
        e2e_rig.wait_for_bridge("astreinte-agent-", timeout=30)
        finish(caller, phone)
        call = service.wait_for_call(since, LINE_MENU)
    assert call.outcome == "accepted", (call.outcome, call.outcome_detail)
    assert [h.number for h in call.hops] == [P2]  # p1 (the default's) never rung
    reasons = [t.reason for t in call.transitions]
    menus = [t.reason for t in call.transitions if t.to_state == "menu"]
    assert menus == [menus[0], f"asked again after a restart (no choice on record): {menus[0]}"]
    assert "menu: key 2 → Agent two (+33180000008)" in reasons, reasons


def _agent_ringing(rig: E2ERig) -> bool:
    channels = rig.pbx.ari_get("/channels")
    assert isinstance(channels, list)
    return any(c["id"].startswith("astreinte-agent-") and c["state"] == "Ringing" for c in channels)
