"""Routing under load of the real world, on a real Asterisk with sipp phones:
busy agents, repeat callers past the rate limit, ring-all hops."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari.adapters.store.queries import CallDetail, list_calls
from tests.e2e.rig import (
    LINE_SHORT,
    LINE_TEAM,
    P1,
    P2,
    SUP,
    E2ERig,
    finish,
    now_utc,
    sqlite_service,
)

pytestmark = pytest.mark.e2e

ANNOUNCEMENT_S = 6.7  # sounds/fr/astreinte-after-hours.wav
RING_TIMEOUT_S = 6  # the e2e lines' hop timeout


def _outcomes(call: CallDetail) -> list[tuple[str, str | None]]:
    return [(h.person_id, h.outcome) for h in call.hops]


@pytest.mark.parametrize("policy", ["skip", "ring"])
def test_second_caller_goes_to_the_backup_while_the_agent_talks(
    e2e_rig: E2ERig, tmp_path: Path, policy: str
) -> None:
    """p1 talks to caller 1; caller 2 on the same line: with `busy_agents: skip` the
    backup rings right after the announcement (p1 is not rung again); `ring` is the
    old behaviour, measured for comparison (p1's phone, in a call, does not answer)."""
    rig = e2e_rig
    with sqlite_service(rig, tmp_path, busy_agents=policy) as service:
        since = now_utc()
        agent = rig.phone(P1, rig.agent("accept", dtmf="1", dtmf_after_ms=1000))
        backup = rig.phone(SUP, rig.agent("accept", dtmf="1", dtmf_after_ms=1000))
        first = rig.call(LINE_SHORT, hold_ms=20000, caller="+33199000101")
        rig.wait_for_bridge("astreinte-agent-")
        second_since = now_utc()
        # Long enough for the announcement, the ring (plus p1's timeout with `ring`), 1.
        hold = 14000 if policy == "skip" else 24000
        second = rig.call(LINE_SHORT, hold_ms=hold, caller="+33199000102")
        finish(second, backup, first, agent)
        call2 = service.wait_for_call(second_since, LINE_SHORT)
        assert service.engine is not None
        both = list_calls(service.engine, since=since, did=LINE_SHORT, limit=5)
        assert sorted(c.outcome or "" for c in both) == ["accepted", "accepted"]
        assert call2.outcome == "accepted", call2.outcome_detail
        sup_hop = call2.hops[-1]
        assert sup_hop.person_id == "sup" and sup_hop.ringing_at is not None
        delay = (sup_hop.ringing_at - call2.started_at).total_seconds()
        print(f"busy_agents={policy}: caller 2 INVITE -> backup ringing {delay:.2f} s")
        assert "Traceback" not in service.log_path.read_text()
        if policy == "skip":
            assert _outcomes(call2) == [("p1", "skipped"), ("sup", "accepted")]
            assert call2.hops[0].cause_text is not None
            assert call2.hops[0].cause_text.startswith("busy: on call ")
            assert delay < ANNOUNCEMENT_S + 2.0, delay
        else:
            assert call2.hops[0].person_id == "p1"
            assert call2.hops[0].outcome in ("no_answer", "unreachable")
            assert delay > ANNOUNCEMENT_S + RING_TIMEOUT_S - 0.5, delay


def test_a_repeat_caller_past_the_limit_still_reaches_the_agent_once(
    e2e_rig: E2ERig, tmp_path: Path
) -> None:
    """One call per 10 minutes, past it one call every 3 minutes still rings the first
    hop: the 2nd call reaches p1, the 3rd right after goes to voicemail; the trail
    says which rule applied each time."""
    rig, number = e2e_rig, "+33199000555"
    with sqlite_service(
        rig, tmp_path, rate_limit=1, still_ring_every=3, busy_agents="skip"
    ) as service:
        since = now_utc()
        first = rig.call(LINE_SHORT, hold_ms=2000, caller=number)  # gone in the announcement
        finish(first)
        call1 = service.wait_for_call(since, LINE_SHORT)
        assert call1.outcome == "abandoned" and call1.hops == ()

        since = now_utc()
        agent = rig.phone(P1, rig.agent("accept", dtmf="1", dtmf_after_ms=1000))
        second = rig.call(LINE_SHORT, hold_ms=16000, caller=number)
        finish(second, agent)
        call2 = service.wait_for_call(since, LINE_SHORT)
        assert call2.outcome == "accepted", call2.outcome_detail
        assert _outcomes(call2) == [("p1", "accepted")]  # the first hop only
        rule2 = call2.transitions[0].reason
        assert rule2 == (
            "period after_hours; caller rate limit: past 1 calls in 10 min (2 now); "
            "still rung (first_hop): one call every 3 min reaches a human"
        ), rule2

        since = now_utc()
        third = rig.call(LINE_SHORT, hold_ms=9000, caller=number)
        finish(third)
        call3 = service.wait_for_call(since, LINE_SHORT)
        assert call3.hops == ()
        assert call3.transitions[0].reason.startswith(
            "period after_hours; caller rate limit: past 1 calls in 10 min (3 now); "
            "voicemail, nobody rung (one call every 3 min still rings; next in "
        ), call3.transitions[0].reason
        assert [t.to_state for t in call3.transitions][:2] == ["announcing", "voicemail_greeting"]
        assert "Traceback" not in service.log_path.read_text()


def _hop_ends(call: CallDetail) -> dict[str, tuple[str | None, str | None]]:
    return {h.person_id: (h.outcome, h.cause_text) for h in call.hops}


@pytest.mark.parametrize(
    ("p1", "p2", "expected"),
    [
        # Both answer and press 1 at (nearly) the same moment: exactly one is bridged.
        (("accept", 1000), ("accept", 1000), None),
        # One declines (presses 2); the other accepts a moment later.
        (("decline", 800), ("accept", 2500), {"p1": ("declined", "wrong key '2'")}),
        # One lets it ring; the other accepts: the ringing phone stops at once.
        (("noanswer", 0), ("accept", 1000), {"p1": ("cancelled", "another agent accepted")}),
    ],
    ids=["both-press-1", "one-declines", "one-no-answer"],
)
def test_ring_all_first_to_press_1_is_bridged(
    e2e_rig: E2ERig,
    tmp_path: Path,
    p1: tuple[str, int],
    p2: tuple[str, int],
    expected: dict[str, tuple[str, str]] | None,
) -> None:
    rig = e2e_rig
    with sqlite_service(rig, tmp_path, team_line=True) as service:
        since = now_utc()
        phones = []
        for number, (behaviour, key_ms) in ((P1, p1), (P2, p2)):
            if behaviour == "decline":
                scenario = rig.agent("accept", dtmf="2", dtmf_after_ms=key_ms)
            elif behaviour == "noanswer":
                scenario = rig.agent("noanswer")
            else:
                scenario = rig.agent("accept", dtmf="1", dtmf_after_ms=key_ms)
            phones.append(rig.phone(number, scenario))
        caller = rig.call(LINE_TEAM, hold_ms=17000, caller="+33199000301")
        bridge = rig.wait_for_bridge("astreinte-agent-")
        finish(caller)
        call = service.wait_for_call(since, LINE_TEAM)
        assert call.outcome == "accepted", call.outcome_detail
        ends = _hop_ends(call)
        accepted = [p for p, (outcome, _) in ends.items() if outcome == "accepted"]
        assert len(accepted) == 1, ends  # exactly one bridged
        assert sum(1 for c in bridge if c.startswith("astreinte-agent-")) == 1
        assert set(ends) == {"p1", "p2"} and {h.seq for h in call.hops} == {1}
        winner = accepted[0]
        loser = "p2" if winner == "p1" else "p1"
        assert call.accepted_person_id == winner
        phone_of = dict(zip(("p1", "p2"), phones, strict=True))
        finish(phone_of[winner])
        # The loser's phone was hung up by the service: before its own key, its
        # scenario (answer, pause, press 1) ends on an "unexpected BYE" (exit 1).
        assert phone_of[loser].wait(30) in (0, 1), phone_of[loser].output()
        assert "Traceback" not in service.log_path.read_text()
        if expected is None:
            assert ends[loser] == ("cancelled", "another agent accepted"), ends
            hop = {h.person_id: h for h in call.hops}
            won_at, lost = hop[winner].accepted_at, hop[loser]
            assert won_at is not None and lost.ended_at is not None
            cut = (lost.ended_at - won_at).total_seconds()
            pressed = f"its key {lost.dtmf!r} too late" if lost.dtmf else "before its key"
            print(f"ring-all race: {winner} bridged; {loser} cancelled {pressed}, hung up "
                  f"{cut * 1000:.0f} ms after {winner}'s key")  # fmt: skip
        else:
            assert winner == "p2" and ends == {**expected, "p2": ("accepted", ends["p2"][1])}
