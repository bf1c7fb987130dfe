"""An agent's mobile that serves MANY calls from one sipp process (UAS).

The single-call `agent_scenario` of sipp.py aborts a call when a CANCEL or a
BYE arrives during one of its pauses (ringing, waiting to press 1): fine for
one call whose course the test controls, not for a burst where some callers
leave early. This phone waits with pauses too, but every message arriving
meanwhile goes to the `_unexp.main` handler, which answers CANCEL (200 + 487
while ringing) and BYE (200) at any time, so each call ends cleanly whatever
the PBX does.

Behaviours (the same for every call of one phone):
- accept: ring `ring_ms`, answer, stream speech, press `dtmf` after
  `dtmf_after_ms`, then wait for the PBX's BYE (or hang up after `talk_ms`).
  The key press time is logged (-trace_logs) for wire.py: the truth for the
  trail's answered_at.
- silent: ring, answer, never press a key (a personal voicemail).
- noanswer: ring until the PBX cancels.
- busy / reject: 486 / 603 at once.
The phone takes up to `max_calls` calls; stop() asks sipp to finish the calls
in progress and exit (SIGUSR1), so a test need not know how many calls the
service will place.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from xml.sax.saxutils import escape

from tests.rig.crowd import SIPP_ENV, even_free_port
from tests.rig.polling import wait_until
from tests.rig.sipp import DTMF_PCAP_DIR, SippRun, start_sipp
from tests.rig.sipp_xml import (
    NEVER_MS,
    OK_TO_LAST,
    SDP,
    handler_recv,
    jump_if_phase,
    scenario,
    set_phase,
)
from tests.rig.wire import AgentLeg, read_agents

BEHAVIOURS = ("accept", "silent", "noanswer", "busy", "reject")
# Phases (see sipp_xml.py): what the phone is doing when a message arrives.
RINGING, ANSWERED, TALKING, LEAVING = 1, 2, 3, 4

# Responses to the INVITE (the To-tag is ours; CSeq kept from the INVITE for the 487).
_INVITE_RESPONSE_HEADERS = """[last_Via:]
[last_From:]
[last_To:];tag=[pid]a[call_number]
[last_Call-ID:]
CSeq: [$cseq] INVITE
Contact: <sip:[local_ip]:[local_port]>"""


def _to_invite(status: str, *, sdp: bool = False) -> str:
    body = "Content-Length: 0\n"
    if sdp:
        body = f"Content-Type: application/sdp\nContent-Length: [len]\n\n{SDP}\n"
    return f"<![CDATA[\nSIP/2.0 {status}\n{_INVITE_RESPONSE_HEADERS}\n{body}]]>"


_PCAP_NAMES = {"#": "pound", "*": "star"}
_CAPTURE_DIALOG = """<ereg regexp=".*" search_in="hdr" header="From:" assign_to="peer"/>
<ereg regexp=".*" search_in="hdr" header="To:" assign_to="me"/>"""


def agent_phone_scenario(
    behaviour: str,
    *,
    speech: Path | None = None,
    ring_ms: int = 800,
    dtmf: str = "1",
    dtmf_after_ms: int = 1500,
    talk_ms: int | None = None,
    press_again_after_ms: int | None = None,
) -> str:
    """The UAS scenario (see the module doc). `press_again_after_ms`: a persistent
    agent who, not connected yet, presses the key once more after that long."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown agent behaviour {behaviour!r}; one of {BEHAVIOURS}")
    invite = f"""<recv request="INVITE" rrs="true"><action>
<ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" assign_to="all,cseq"/>
{set_phase(RINGING)}</action></recv>"""
    if behaviour in ("busy", "reject"):
        code = "486 Busy Here" if behaviour == "busy" else "603 Decline"
        # The labels `resume` may jump to, all meaning "nothing left to do".
        flow = (
            f'{invite}\n<send>{_to_invite(code)}</send>\n<recv request="ACK" next="done"/>\n'
            '<label id="ring"/><label id="key"/><label id="talk"/><label id="hold_on"/>'
        )
    else:
        flow = f"""{invite}
<send>{_to_invite("180 Ringing")}</send>
<label id="ring"/>
<pause milliseconds="{NEVER_MS if behaviour == "noanswer" else ring_ms}"/>
<send retrans="500">{_to_invite("200 OK", sdp=True)}<action>{set_phase(ANSWERED)}</action></send>
<recv request="ACK"><action>{_CAPTURE_DIALOG}{_stream(speech)}</action></recv>
<label id="key"/>
{_key(dtmf, dtmf_after_ms) if behaviour == "accept" else ""}
{_key(dtmf, press_again_after_ms) if behaviour == "accept" and press_again_after_ms else ""}
<label id="talk"/>
<pause milliseconds="{NEVER_MS if talk_ms is None else talk_ms}"/>
<send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$me]
To: [$peer]
Call-ID: [call_id]
CSeq: 10 BYE
Max-Forwards: 70
Content-Length: 0
]]><action>{set_phase(LEAVING)}</action></send>
<label id="hold_on"/>
<pause milliseconds="{NEVER_MS}"/>
<nop next="resume"/>"""
    handler = "\n".join(
        [
            handler_recv(request="CANCEL", next_label="on_cancel"),
            handler_recv(request="BYE", next_label="on_bye"),
            handler_recv(request="ACK", next_label="resume", extra_actions=_CAPTURE_DIALOG),
            handler_recv(response=481, next_label="done"),
            handler_recv(response=200, next_label="done", optional=False),
        ]
    )
    body = f"""{flow}
<nop next="done"/>

<label id="on_bye"/>
<send>{OK_TO_LAST}</send>
<nop next="done"/>

<label id="on_cancel"/>
<send>{OK_TO_LAST}</send>
{jump_if_phase({RINGING: "cancelled"})}
<nop next="resume"/>
<label id="cancelled"/>
<send>{_to_invite("487 Request Terminated")}</send>
<recv request="ACK" next="done"/>

<label id="resume"/>
{jump_if_phase({RINGING: "ring", ANSWERED: "key", TALKING: "talk", LEAVING: "hold_on"})}
<nop next="done"/>

<label id="_unexp.main"/>
{handler}
<label id="done"/>
<Reference variables="all,me,peer"/>"""
    return scenario(f"agent phone {behaviour}", body)


def _key(dtmf: str, after_ms: int) -> str:
    """Wait, log the key press time (wire.py reads it), send the RFC 2833 key."""
    pcap = DTMF_PCAP_DIR / f"dtmf_2833_{_PCAP_NAMES.get(dtmf, dtmf)}.pcap"
    if not pcap.exists():
        raise ValueError(f"no RFC 2833 pcap for key {dtmf!r}: {pcap}")
    return f"""<pause milliseconds="{after_ms}"/>
<nop><action><gettimeofday assign_to="key_s,key_us"/>
<log message="dtmf [call_id] [$key_s] [$key_us] {escape(dtmf)}"/>
<exec play_pcap_audio="{pcap}"/>{set_phase(TALKING)}</action></nop>"""


def _stream(speech: Path | None) -> str:
    """Action: a real phone sends media once answered; sipp only if told to."""
    if speech is None:
        return ""
    return f'<exec rtp_stream="{escape(str(speech))},-1,0"/>'


@dataclass
class AgentPhone:
    """A running sipp UAS playing one mobile for any number of calls."""

    run: SippRun

    def stop(self, timeout: float = 30.0) -> int:
        """Let the calls in progress finish, then exit; sipp's exit code."""
        proc = self.run.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGUSR1)  # soft exit: no new calls, finish the rest
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.run.kill()
        return proc.returncode

    def wire(self) -> list[AgentLeg]:
        """Every call this phone received so far (times in UTC)."""
        return read_agents(self.run, zone=UTC)

    def wait_for_wire(
        self, ready: Callable[[list[AgentLeg]], bool], *, timeout: float, what: str
    ) -> list[AgentLeg]:
        """Poll until `ready(legs)`, e.g. "an agent answered" or "a key was pressed"."""

        def probe() -> tuple[list[AgentLeg]] | None:
            legs = self.wire()
            return (legs,) if ready(legs) else None

        return wait_until(probe, timeout=timeout, what=what)[0]


def start_agent_phone(
    workdir: Path,
    name: str,
    scenario_xml: str,
    *,
    port: int,
    max_calls: int = 1000,
    timeout_s: int = 300,
    local_ip: str = "127.0.0.1",
) -> AgentPhone:
    """The phone listening on `local_ip`:`port` (the mobile's port in LocalAsterisk.mobiles)."""
    run = start_sipp(
        workdir,
        name,
        scenario_xml,
        local_port=port,
        media_port=even_free_port(),
        timeout_s=timeout_s,
        calls=max_calls,
        concurrency=max_calls,
        extra_args=("-trace_msg", "-trace_logs"),
        env=SIPP_ENV,
        local_ip=local_ip,
    )
    return AgentPhone(run)
