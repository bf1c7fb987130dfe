"""Recording of the bridged conversation (record_calls), over the scripted PBX in
virtual time: the notice comes before anything is recorded, the file is stored
beside the voicemails, the agent's stop keys discard it, and the trail says each
step (callflow/recording.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from astreinte_ari.callflow.audit_events import (
    CallEnded,
    ConversationRecording,
    RecordingStep,
)
from astreinte_ari.callflow.identity import call_id_for_channel, conversation_recording_name_for
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.callflow.recording import KeySequence
from astreinte_ari.callflow.recovery import ResumePoint
from astreinte_ari.callflow.telephony import (
    Bridge,
    Channel,
    ChannelEntered,
    PlaybackFinished,
    RecordingFinished,
    Resynced,
    TelephonyError,
)
from astreinte_ari.routing.plan import AnnouncementMode, RecordingPolicy
from tests.unit.callflow_fakes import DID, FakePbx, hop, plan
from tests.unit.callflow_line import CALLER, Line, wav
from tests.unit.virtual_time import virtual_time

NOTICE = "astreinte-recording-notice"
ALICE = hop("alice", "+33611111111")
RECORDS = RecordingPolicy(purpose="training of the on-call team")
STOPPABLE = RecordingPolicy(purpose="training of the on-call team", agent_can_stop=True)


@pytest.mark.parametrize(
    ("keys", "pressed", "matches"),
    [
        ("*9", "*9", [False, True]),
        ("*9", "9", [False]),  # the 9 alone is not the sequence
        ("*9", "**9", [False, False, True]),  # a repeated * still starts it
        ("*9", "*19", [False, False, False]),  # interrupted
        ("*9", "*9*9", [False, True, False, True]),  # matched, then again from nothing
        ("9", "19", [False, True]),
        ("#", "A#", [False, True]),  # "A" (not a phone key) only breaks the sequence
        ("*9", ["*", "99", "9"], [False, False, False]),  # "99" is not one key: reset
    ],
)
def test_the_stop_keys(keys: str, pressed: str | list[str], matches: list[bool]) -> None:
    sequence = KeySequence(keys)
    assert [sequence.feed(digit) for digit in pressed] == matches


def steps(line: Line, call: str) -> list[RecordingStep]:
    return [e.step for e in line.trail.of(ConversationRecording) if e.call_id == call]


def recording_events(line: Line, call: str) -> list[ConversationRecording]:
    return [e for e in line.trail.of(ConversationRecording) if e.call_id == call]


async def snoop_enters(line: Line) -> str:
    """The PBX's snoop on the caller's channel enters the application: its id."""
    await line.until(lambda: bool(line.pbx.did("snoop")), "snoop asked for")
    ((spied, snoop_id),) = line.pbx.did("snoop")
    assert spied == CALLER
    channel = Channel(snoop_id, f"Snoop/{CALLER}", "Up", "", "", stasis_app="astreinte")
    await line.feed(ChannelEntered(channel, ("snoop",), at=line.now()))
    await line.until(lambda: bool(line.pbx.did("record_conversation")), "recording started")
    return str(snoop_id)


async def accepted_and_bridged(line: Line) -> tuple[str, str]:
    call = await line.arrive()
    leg = await line.leg(1)
    await line.rings(leg)
    await line.answers(leg)
    await line.playing("astreinte-press-1", leg)
    await line.presses(leg, "1")
    await line.until(lambda: CallState.BRIDGED in line.states(call), "bridged")
    return call, leg


@virtual_time
async def test_the_conversation_is_recorded_after_the_notice_and_stored() -> None:
    line = Line(plan(ALICE, recording=RECORDS))
    call, leg = await accepted_and_bridged(line)
    name = conversation_recording_name_for(call)
    snoop = await snoop_enters(line)
    await line.wait(30)
    await line.hangs_up(leg)
    await line.until(lambda: (snoop,) in line.pbx.did("hangup"), "snoop hung up")
    line.pbx.stored_recording = wav(30.0)
    await line.feed(RecordingFinished(name, 30.0))
    await line.done()

    # The notice is the first thing the caller hears; the recording starts after it
    # and after the bridging, on a snoop of the caller (both directions), with the
    # agent's keys left alone.
    actions = [action for action, _ in line.pbx.actions]
    assert line.plays(NOTICE, CALLER) and line.pbx.did("play")[0][1].endswith(NOTICE)
    assert actions.index("add_to_bridge") < actions.index("snoop")
    ((recorded_channel, recorded, *_),) = line.pbx.did("record_conversation")
    assert (recorded_channel, recorded) == (snoop, name)
    assert line.pbx.did("create_bridge")[0][1] == ("dtmf_events", False)
    assert steps(line, call) == [
        RecordingStep.NOTICE_PLAYED,
        RecordingStep.STARTED,
        RecordingStep.STORED,
    ]
    started, stored = recording_events(line, call)[1:]
    assert started.detail == "purpose: training of the on-call team"
    assert stored.path == f"/var/lib/astreinte/voicemail/{call}.conversation.wav"
    assert stored.seconds == 30.0
    assert line.mailbox.saved[f"{call}.conversation"] == wav(30.0)
    assert line.pbx.did("delete_recording") == [(name,)]  # the PBX keeps no copy
    # The file is in the trail before the call's ending.
    trail = line.trail.events
    assert trail.index(stored) < trail.index(line.ended(call))
    assert line.ended(call).outcome is CallOutcome.ACCEPTED


@virtual_time
async def test_the_agent_excludes_the_call_with_the_stop_keys() -> None:
    line = Line(plan(ALICE, recording=STOPPABLE))
    call, leg = await accepted_and_bridged(line)
    name = conversation_recording_name_for(call)
    snoop = await snoop_enters(line)
    assert line.pbx.did("create_bridge")[0][1] == ("dtmf_events", True)
    await line.wait(10)
    await line.presses(CALLER, "*")  # the caller's keys do nothing
    await line.presses(CALLER, "9")
    await line.presses(leg, "*")
    await line.presses(leg, "9")
    await line.until(lambda: bool(line.pbx.did("discard_recording")), "recording discarded")
    await line.wait(20)  # the conversation goes on, unrecorded
    await line.hangs_up(CALLER)
    await line.done()

    assert line.pbx.did("discard_recording") == [(name,)]
    assert (snoop,) in line.pbx.did("hangup")
    assert (name,) in line.pbx.did("delete_recording")  # a stored part goes too
    assert steps(line, call) == [
        RecordingStep.NOTICE_PLAYED,
        RecordingStep.STARTED,
        RecordingStep.EXCLUDED,
    ]
    excluded = recording_events(line, call)[-1]
    assert excluded.detail == "the agent pressed *9: recording stopped and discarded"
    assert line.at(excluded.at) == pytest.approx(line.at(recording_events(line, call)[1].at) + 10)
    assert not line.mailbox.saved and not line.pbx.did("fetch_recording")
    ended = line.ended(call)
    assert ended.outcome is CallOutcome.ACCEPTED and ended.talk_seconds == 30.0


@virtual_time
async def test_the_stop_keys_do_nothing_where_the_line_does_not_allow_it() -> None:
    line = Line(plan(ALICE, recording=RECORDS))
    call, leg = await accepted_and_bridged(line)
    snoop = await snoop_enters(line)
    await line.presses(leg, "*")
    await line.presses(leg, "9")
    await line.hangs_up(CALLER)
    await line.until(lambda: (snoop,) in line.pbx.did("hangup"), "snoop hung up")
    line.pbx.stored_recording = wav(2.0)
    await line.feed(RecordingFinished(conversation_recording_name_for(call), 2.0))
    await line.done()
    assert not line.pbx.did("discard_recording")
    assert steps(line, call)[-1] is RecordingStep.STORED


@virtual_time
async def test_nothing_is_recorded_when_the_notice_could_not_be_played() -> None:
    line = Line(plan(ALICE, recording=RECORDS), pbx=FakePbx(held_sounds=frozenset({NOTICE})))
    call = await line.arrive()
    notice = await line.playing(NOTICE, CALLER)
    await line.feed(PlaybackFinished(notice, failed=True))
    leg = await line.leg(1)
    await line.rings(leg)
    await line.answers(leg)
    await line.playing("astreinte-press-1", leg)
    await line.presses(leg, "1")
    await line.until(lambda: CallState.BRIDGED in line.states(call), "bridged")
    await line.wait(5)
    await line.hangs_up(CALLER)
    await line.done()
    assert not line.pbx.did("snoop") and not line.pbx.did("record_conversation")
    assert steps(line, call) == [RecordingStep.NOTICE_FAILED, RecordingStep.NOT_STARTED]
    assert recording_events(line, call)[-1].detail == "the caller did not hear the notice"
    assert line.ended(call).outcome is CallOutcome.ACCEPTED


@virtual_time
async def test_a_refused_recording_does_not_stop_the_conversation() -> None:
    pbx = FakePbx(errors={"record_conversation": TelephonyError("500 Internal Server Error")})
    line = Line(plan(ALICE, recording=RECORDS), pbx=pbx)
    call, _ = await accepted_and_bridged(line)
    snoop = await snoop_enters(line)
    await line.wait(5)
    await line.hangs_up(CALLER)
    await line.done()
    assert steps(line, call) == [RecordingStep.NOTICE_PLAYED, RecordingStep.NOT_STARTED]
    assert "PBX refused" in (recording_events(line, call)[-1].detail or "")
    assert (snoop,) in line.pbx.did("hangup")  # no snoop left behind
    assert line.ended(call).talk_seconds == 5.0


@virtual_time
async def test_a_conversation_too_short_for_the_snoop_is_not_recorded() -> None:
    line = Line(plan(ALICE, recording=RECORDS))
    call, leg = await accepted_and_bridged(line)
    await line.until(lambda: bool(line.pbx.did("snoop")), "snoop asked for")
    await line.hangs_up(leg)  # before the snoop entered the application
    await line.done()
    assert not line.pbx.did("record_conversation")
    assert steps(line, call)[-1] is RecordingStep.NOT_STARTED
    assert recording_events(line, call)[-1].detail == (
        "the conversation ended before the recording started"
    )


@virtual_time
async def test_no_file_from_the_pbx_is_a_failure_on_record() -> None:
    line = Line(plan(ALICE, recording=RECORDS))
    call, leg = await accepted_and_bridged(line)
    await snoop_enters(line)
    await line.hangs_up(leg)
    await line.done()  # no RecordingFinished, no file: after the grace, a failure
    assert steps(line, call)[-1] is RecordingStep.FAILED
    assert not line.mailbox.saved


@virtual_time
async def test_a_line_that_does_not_record_plays_no_notice() -> None:
    line = Line(plan(ALICE))
    call, _ = await accepted_and_bridged(line)
    await line.hangs_up(CALLER)
    await line.done()
    assert not line.plays(NOTICE) and not line.pbx.did("snoop")
    assert steps(line, call) == []
    assert isinstance(line.ended(call), CallEnded)


@dataclass
class LiveRecordingPbx(FakePbx):
    """The PBX after a service restart: these recordings are still going."""

    live: set[str] = field(default_factory=set)

    async def recording_active(self, name: str) -> bool:
        return name in self.live


@pytest.mark.parametrize("still_recording", [True, False])
@virtual_time
async def test_a_conversation_re_attached_after_a_restart(still_recording: bool) -> None:
    call = call_id_for_channel(CALLER)
    name = conversation_recording_name_for(call)
    point = ResumePoint(call, last_seq=5, hops_tried=1, open_hop_ids=(),
                        accepted_hop_id="hop-1", accepted_person_id="alice")  # fmt: skip

    async def resume_lookup(channel_id: str) -> ResumePoint:
        return point

    pbx = LiveRecordingPbx(live={name} if still_recording else set())
    line = Line(plan(ALICE, recording=RECORDS), pbx=pbx, resume_lookup=resume_lookup)
    caller = Channel(CALLER, "PJSIP/trunk-1", "Up", "+33199000001", "Client", exten=DID,
                     stasis_app="astreinte", stasis_args=(DID,), created_at=line.now())  # fmt: skip
    line.callers[call] = caller
    agent = Channel("astreinte-agent-0a1b", "PJSIP/alice-1", "Up", "", "", stasis_app="astreinte")
    bridge = Bridge("astreinte-bridge-0a1b", (CALLER, agent.id))
    await line.feed(Resynced(channels=(caller, agent), bridges=(bridge,)))
    await line.until(lambda: bool(line.states(call)), "re-attached")
    await line.wait(20)
    await line.hangs_up(CALLER)
    if still_recording:
        await line.until(lambda: bool(line.pbx.did("destroy_bridge")), "bridge destroyed")
        line.pbx.stored_recording = wav(20.0)
        await line.feed(RecordingFinished(name, 20.0))
    await line.done()
    if still_recording:
        assert steps(line, call) == [RecordingStep.STORED]
        assert line.mailbox.saved[f"{call}.conversation"] == wav(20.0)
    else:
        assert steps(line, call) == [] and not line.pbx.did("fetch_recording")
    assert line.ended(call).outcome is CallOutcome.ACCEPTED


# -- early dial: the notice is the first sound of an announcement that plays while
# the agent's phone already rings; it is never cut, so nobody is recorded unwarned.

ANNOUNCEMENT = "astreinte-after-hours"


def early_line(mode: AnnouncementMode) -> Line:
    held = frozenset({NOTICE, ANNOUNCEMENT})
    return Line(
        plan(ALICE, recording=RECORDS, early_dial=True, announcement_mode=mode),
        pbx=FakePbx(held_sounds=held),
    )


@pytest.mark.parametrize("mode", list(AnnouncementMode))
@virtual_time
async def test_early_dial_an_agent_who_accepts_during_the_notice_waits_for_its_end(
    mode: AnnouncementMode,
) -> None:
    line = early_line(mode)
    call = await line.arrive()
    leg = await line.leg(1)  # rings at once, during the notice
    notice = await line.playing(NOTICE, CALLER)
    assert line.at(line.hops(call)[0].at) == 0.0
    await line.rings(leg)
    await line.wait(1)
    await line.answers(leg)
    await line.playing("astreinte-press-1", leg)
    await line.presses(leg, "1")
    await line.until(lambda: CallState.AGENT_WAITING in line.states(call), "agent on hold")
    assert not line.pbx.did("add_to_bridge"), "bridged before the notice ended"
    assert (notice,) not in line.pbx.did("stop_playback"), "the notice was cut"
    await line.wait(2)
    await line.finishes(notice)  # the notice ends; `full` plays the announcement too
    if mode is AnnouncementMode.FULL:
        announcement = await line.playing(ANNOUNCEMENT, CALLER)
        assert not line.pbx.did("add_to_bridge")
        await line.wait(3)
        await line.finishes(announcement)
    else:
        assert not line.plays(ANNOUNCEMENT, CALLER)  # cut: skipped after the notice
    await line.until(lambda: CallState.BRIDGED in line.states(call), "bridged")
    snoop = await snoop_enters(line)
    name = conversation_recording_name_for(call)
    await line.wait(20)
    await line.hangs_up(leg)
    await line.until(lambda: (snoop,) in line.pbx.did("hangup"), "snoop hung up")
    line.pbx.stored_recording = wav(20.0)
    await line.feed(RecordingFinished(name, 20.0))
    await line.done()
    assert steps(line, call) == [
        RecordingStep.NOTICE_PLAYED,
        RecordingStep.STARTED,
        RecordingStep.STORED,
    ]
    assert line.ended(call).outcome is CallOutcome.ACCEPTED


@virtual_time
async def test_early_dial_a_notice_that_failed_means_no_recording() -> None:
    line = early_line(AnnouncementMode.UNTIL_ACCEPTED)
    call = await line.arrive()
    leg = await line.leg(1)
    notice = await line.playing(NOTICE, CALLER)
    await line.feed(PlaybackFinished(notice, failed=True))
    await line.rings(leg)
    await line.answers(leg)
    await line.playing("astreinte-press-1", leg)
    await line.presses(leg, "1")
    await line.until(lambda: CallState.BRIDGED in line.states(call), "bridged")
    await line.wait(5)
    await line.hangs_up(CALLER)
    await line.done()
    assert not line.pbx.did("snoop") and not line.pbx.did("record_conversation")
    assert steps(line, call) == [RecordingStep.NOTICE_FAILED, RecordingStep.NOT_STARTED]
