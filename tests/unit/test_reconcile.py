"""Closing calls that ended while the service was away, from the PBX's CEL records.

The CEL lines below were written by a real Asterisk 16 with
dialplan/cel_custom_astreinte.conf (an e2e run: a caller, an agent leg that
answered, both bridged, the caller hanging up).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astreinte_ari.adapters.pbx.cel import CelFile, parse_line
from astreinte_ari.callflow.audit_events import CallEnded, HopEnded, StateChanged
from astreinte_ari.callflow.identity import TEST_LEG, agent_channel_id
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.reconcile import (
    NO_RECORD,
    ChannelHistory,
    OpenCall,
    OpenHop,
    Reconciler,
    settle_open_call,
)

HOP = "dd30fcb2-7dfd-4706-a210-3fcb61b1fc84"
AGENT = agent_channel_id(HOP)
CALLER = "1796053342.24"
REAL_LINES = f'''"CHAN_START","1796053342.852692","{CALLER}","{CALLER}","PJSIP/caller-00000000","astreinte-inbound","+33180000002","",""
"ANSWER","1796053342.852970","{CALLER}","{CALLER}","PJSIP/caller-00000000","astreinte-inbound","+33180000002","Answer",""
"CHAN_START","1796053350.236030","{AGENT}","{AGENT}","PJSIP/+33610000001-00000006","astreinte-unused","s","",""
"ANSWER","1796053351.042731","{AGENT}","{AGENT}","PJSIP/+33610000001-00000006","astreinte-unused","s","AppDial2",""
"BRIDGE_ENTER","1796053351.853872","{CALLER}","{CALLER}","PJSIP/caller-00000000","astreinte-inbound","+33180000002","Stasis","{{""bridge_id"":""astreinte-bridge-9b82719652ef43ed"",""bridge_technology"":""simple_bridge""}}"
"BRIDGE_ENTER","1796053351.866907","{AGENT}","{CALLER}","PJSIP/+33610000001-00000006","astreinte-unused","s","Stasis","{{""bridge_id"":""astreinte-bridge-9b82719652ef43ed"",""bridge_technology"":""simple_bridge""}}"
"HANGUP","1796053392.859339","{CALLER}","{CALLER}","PJSIP/caller-00000000","astreinte-inbound","+33180000002","","{{""hangupcause"":16,""hangupsource"":""PJSIP/caller-00000000"",""dialstatus"":""""}}"
"HANGUP","1796053392.861008","{AGENT}","{CALLER}","PJSIP/+33610000001-00000006","astreinte-unused","s","AppDial2","{{""hangupcause"":16,""hangupsource"":""PJSIP/caller-00000000"",""dialstatus"":""""}}"
"CHAN_END","1796053392.861100","{AGENT}","{CALLER}","PJSIP/+33610000001-00000006","astreinte-unused","s","AppDial2",""
'''  # noqa: E501 - real lines, kept whole


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_a_real_cel_line_parses() -> None:
    row = parse_line(REAL_LINES.splitlines()[-3])
    assert row is not None
    assert row["type"] == "HANGUP"
    assert row["uniqueid"] == CALLER
    assert '"hangupcause":16' in row["extra"]
    assert parse_line('"HANGUP","17960') is None  # a line torn by a crash


def test_history_of_a_bridged_call(tmp_path: Path) -> None:
    path = tmp_path / "cel.csv"
    path.write_text(REAL_LINES)
    history = CelFile(path).read_history({CALLER, AGENT, "1796000000.99"}, at(1796053000))
    caller = history[CALLER]
    assert caller.answered_at == at(1796053342.852970)
    assert caller.bridged_at == at(1796053351.853872)
    assert caller.ended_at == at(1796053392.859339)
    assert caller.cause == 16
    assert caller.hangup_source == CALLER  # the channel name resolved to its id
    assert history[AGENT].ended_at == at(1796053392.861008)  # HANGUP, not CHAN_END
    assert "1796000000.99" not in history


def test_history_is_found_by_bisection_in_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "cel.csv"
    filler = "".join(
        f'"CHAN_START","{1796000000 + i}.000000","1796000000.{i}","x","PJSIP/x","c","e","",""\n'
        for i in range(40_000)
    )
    path.write_text(filler + REAL_LINES)
    assert path.stat().st_size > 2_000_000
    history = CelFile(path).read_history({CALLER}, at(1796053300))
    assert history[CALLER].ended_at == at(1796053392.859339)


def test_a_missing_or_unreadable_file_is_no_record(tmp_path: Path) -> None:
    records = CelFile(tmp_path / "absent.csv")
    assert not records.available
    assert records.read_history({CALLER}, at(0)) == {}
    assert not CelFile(None).available


T0 = at(1796053342.852692)


def open_call(**kwargs: object) -> OpenCall:
    base: dict[str, object] = {
        "call_id": "c-1",
        "channel_id": CALLER,
        "started_at": T0,
        "last_seq": 3,
        "last_state": CallState.DIALING,
        "last_event_at": T0 + timedelta(seconds=7),
    }
    base.update(kwargs)
    return OpenCall(**base)  # type: ignore[arg-type]


ENDED = T0 + timedelta(seconds=50)


@pytest.mark.parametrize(
    ("call", "history", "outcome", "detail", "hops"),
    [
        # Waiting for the agent when the service died; the caller gave up.
        (
            open_call(open_hops=(OpenHop(HOP, 1, "p1", None),)),
            {CALLER: ChannelHistory(CALLER, ended_at=ENDED, cause=16)},
            CallOutcome.ABANDONED,
            "abandoned at dialing: caller hung up while the service was away (cause 16",
            [(HopOutcome.CANCELLED, ENDED)],
        ),
        # The agent's phone was busy before the caller left: the PBX says so.
        (
            open_call(open_hops=(OpenHop(HOP, 1, "p1", None),)),
            {
                CALLER: ChannelHistory(CALLER, ended_at=ENDED, cause=16),
                AGENT: ChannelHistory(AGENT, ended_at=T0 + timedelta(seconds=9), cause=17),
            },
            CallOutcome.ABANDONED,
            "abandoned at dialing",
            [(HopOutcome.BUSY, T0 + timedelta(seconds=9))],
        ),
        # Talking when the service died: the conversation's true end and length.
        (
            open_call(
                last_state=CallState.BRIDGED,
                answered_at=T0 + timedelta(seconds=10),
                accepted_hop_id=HOP,
                accepted_person_id="p1",
                open_hops=(OpenHop(HOP, 1, "p1", T0 + timedelta(seconds=8)),),
            ),
            {
                CALLER: ChannelHistory(CALLER, ended_at=ENDED, cause=16),
                AGENT: ChannelHistory(AGENT, ended_at=ENDED + timedelta(seconds=0.1), cause=16),
            },
            CallOutcome.ACCEPTED,
            "talked 40.0s with p1, ended by caller while the service was away",
            [(HopOutcome.ACCEPTED, ENDED)],
        ),
        # Handed to the fallback, which could not write its record: the PBX still knows.
        (
            open_call(last_state=None, last_seq=0),
            {CALLER: ChannelHistory(CALLER, bridged_at=T0 + timedelta(seconds=5), ended_at=ENDED)},
            CallOutcome.CONNECTED,
            "connected by the dialplan fallback, which left no record",
            [],
        ),
        # No record of the PBX at all: closed at the last known moment, and said so.
        (
            open_call(),
            {},
            CallOutcome.ABANDONED,
            "abandoned at dialing",
            [],
        ),
        # A line's test call cut short by a restart: failed, and still a test call.
        (
            open_call(channel_id=TEST_LEG + "0123"),
            {},
            CallOutcome.TEST_FAILED,
            "test call: abandoned at dialing",
            [],
        ),
    ],
)
def test_settle_an_open_call(
    call: OpenCall,
    history: dict[str, ChannelHistory],
    outcome: CallOutcome,
    detail: str,
    hops: list[tuple[HopOutcome, datetime]],
) -> None:
    events = settle_open_call(call, history)
    ended = [e for e in events if isinstance(e, CallEnded)]
    assert len(ended) == 1
    assert ended[0].outcome is outcome
    assert ended[0].detail.startswith(detail), ended[0].detail
    expected_end = history[CALLER].ended_at if CALLER in history else call.last_event_at
    assert ended[0].at == expected_end
    if not history:
        assert NO_RECORD in ended[0].detail
    transitions = [e for e in events if isinstance(e, StateChanged)]
    assert [(t.seq, t.to_state) for t in transitions] == [(call.last_seq + 1, CallState.ENDED)]
    assert [(h.outcome, h.at) for h in events if isinstance(h, HopEnded)] == hops


class Sink:
    def __init__(self) -> None:
        self.events: list[object] = []

    def emit(self, event: object) -> None:
        self.events.append(event)


class Records:
    available = True

    def __init__(self, history: dict[str, ChannelHistory]) -> None:
        self.history_of = history

    async def history(self, channel_ids: object, since: datetime) -> dict[str, ChannelHistory]:
        return self.history_of


async def test_the_sweep_closes_only_what_nobody_handles() -> None:
    calls = [
        open_call(call_id="gone", channel_id="1.1"),
        open_call(call_id="on-pbx", channel_id="1.2"),
        open_call(call_id="live-here", channel_id="1.3"),
        open_call(call_id="with-fallback", channel_id="1.4"),
        open_call(call_id="no-record-yet", channel_id="1.5", last_event_at=ENDED),
    ]

    async def open_calls() -> list[OpenCall]:
        return calls

    sink = Sink()
    reconciler = Reconciler(
        open_calls=open_calls,
        records=Records({"1.1": ChannelHistory("1.1", ended_at=ENDED, cause=16)}),
        fallback_pending=lambda channel_id: channel_id == "1.4",
        audit=sink,
        clock=lambda: ENDED + timedelta(seconds=30),  # the PBX may still be writing 1.5's
    )
    result = await reconciler.sweep(present={"1.2"}, owned={"live-here"})
    assert result.closed == ("gone",)
    assert set(result.waiting) == {"on-pbx", "with-fallback", "no-record-yet"}
    # Once closed, never twice (the writer may not have committed the ending yet).
    again = await reconciler.sweep(present={"1.2"}, owned={"live-here"})
    assert "gone" not in again.closed
    assert len([e for e in sink.events if isinstance(e, CallEnded)]) == 1
