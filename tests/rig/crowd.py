"""Many distinct callers from ONE sipp process, each call with its own plan.

One sipp UAC places `len(plans)` calls at a given rate; an injection file
(`-inf`, SEQUENTIAL: call n takes line n) gives each call its own caller
number, its own From header (any bytes, e.g. invalid UTF-8) and its own
hang-up plan. Unique caller numbers also keep the service's per-caller rate
limit out of the way.

Hang-up plans (both optional; the earlier deadline wins; the PBX may end the
call first at any time, and an error final response ends it too):
- `hang_up_after_invite_ms=N`: N ms after sending the INVITE, answered or not:
  CANCEL if no final response yet, BYE if answered. ("a caller who gives up")
- `hang_up_after_answer_ms=N`: N ms after the 200 OK, unless the PBX hangs up
  first. ("a caller who talks N ms")
- neither: stay until the PBX hangs up (or sipp's -timeout).

How the scenario waits without fixed `timeout=` attributes (sipp cannot take
them from a field): each wait is `<pause variable=remaining>` with `remaining`
recomputed from gettimeofday against the call's own deadline, and every SIP
message arriving meanwhile is "unexpected" for the pause, so sipp jumps to
the `_unexp.main` handler, which dispatches on the message and on a `phase`
variable (waiting, talking, cancelling, saying bye), then resumes the wait.

Media: while answered the caller streams the speech file (rtp_stream). sipp
3.6 sends every call's RTP from the one -mp socket (and play_pcap_audio spoofs
that port too), so concurrent calls of one process share one free even port
without colliding: the PBX side has one RTP port per channel.
Limits: a field cannot hold ';' (sipp's field separator, no escape), CR, LF
or NUL; a display name with ';' needs a single-call caller_scenario.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from fractions import Fraction
from pathlib import Path
from xml.sax.saxutils import escape

from astreinte_ari.devtools.localpbx import free_port
from tests.rig.polling import wait_until
from tests.rig.sipp import SippRun, sipp_media_port, start_sipp
from tests.rig.sipp_xml import (
    NEVER_MS,
    OK_TO_LAST,
    SDP,
    handler_recv,
    jump_if_phase,
    now_ms,
    scenario,
    set_phase,
)
from tests.rig.wire import CallerLeg, read_callers

SIPP_ENV = {"TZ": "UTC"}  # trace times then read unambiguously as UTC (wire.py)
_FORBIDDEN = (b";", b"\r", b"\n", b"\0")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """One caller: who it claims to be and when it hangs up."""

    number: str
    name: str | bytes = "Caller"
    hang_up_after_invite_ms: int | None = None
    hang_up_after_answer_ms: int | None = None
    raw_from: str | bytes | None = None  # the From value before ";tag=", sent verbatim

    def from_value(self, local_port: int) -> bytes:
        if self.raw_from is not None:
            return _bytes(self.raw_from)
        return (
            b'"'
            + _bytes(self.name)
            + b'" <sip:'
            + _bytes(self.number)
            + (f"@127.0.0.1:{local_port}>".encode())
        )


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def numbered(index: int, prefix: str = "+3319900", width: int = 4) -> str:
    """A unique caller number per call: +3319900 + zero-padded index."""
    return f"{prefix}{index:0{width}d}"


def injection_file(path: Path, plans: Sequence[CallPlan], local_port: int) -> Path:
    """Write the -inf file: index;number;from;after_invite_ms;after_answer_ms."""
    lines = [b"SEQUENTIAL"]
    for index, plan in enumerate(plans):
        fields = [
            str(index).encode(),
            _bytes(plan.number),
            plan.from_value(local_port),
            str(_ms(plan.hang_up_after_invite_ms)).encode(),
            str(_ms(plan.hang_up_after_answer_ms)).encode(),
        ]
        for field in fields:
            bad = [c for c in _FORBIDDEN if c in field]
            if bad:
                raise ValueError(f"call {index} ({plan.number!r}): {field!r} holds {bad}")
        lines.append(b";".join(fields))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _ms(value: int | None) -> int:
    if value is None:
        return NEVER_MS
    if value < 0:
        raise ValueError(f"a hang-up delay cannot be negative: {value}")
    return value


_TARGET = "sip:[service]@[remote_ip]:[remote_port]"
_INVITE_BRANCH = "z9hG4bK-[pid]-[call_number]-inv"  # fixed: CANCEL and non-2xx ACK reuse it
# Phases: what a call is doing when a message arrives (see sipp_xml.py).
WAITING, TALKING, CANCELLING, LEAVING, ENDED = 1, 2, 3, 4, 5
_PROVISIONAL = (100, 180, 181, 182, 183, 199)
# Error finals: to the INVITE they end the call (ACK, done); to a BYE, our BYE is over.
_ERRORS = (400, 401, 403, 404, 405, 407, 408, 410, 415, 420, 422, 480, 481, 482, 483,
           484, 485, 486, 487, 488, 489, 491, 493, 500, 501, 502, 503, 504, 505, 513,
           580, 600, 603, 604, 606)  # fmt: skip


def _request(method: str, uri: str, branch: str, cseq: str, to: str, sdp: bool = False) -> str:
    length = "Content-Type: application/sdp\nContent-Length: [len]" if sdp else "Content-Length: 0"
    body = f"\n{SDP}\n" if sdp else ""  # sipp ends a body-less message itself
    return f"""<![CDATA[
{method} {uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}
From: [field2];tag=[pid]c[call_number]
{to}
Call-ID: [call_id]
CSeq: {cseq}
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
{length}
{body}]]>"""


def caller_crowd_scenario(speech: Path | None) -> str:
    """The UAC scenario driven by injection_file() (see the module doc)."""
    stream = f'<exec rtp_stream="{escape(str(speech))},-1,0"/>' if speech else ""
    to = f"To: <{_TARGET}>"
    invite = _request("INVITE", _TARGET, _INVITE_BRANCH, "1 INVITE", to, sdp=True)
    # In-dialog requests go to the Contact of the INVITE's 200 (copied in first_200): no
    # rrs="true", which makes sipp warn for every 200 without a Contact (CANCEL's, BYE's).
    ack_2xx = _request("ACK", "[$peer_uri]", "[branch]", "1 ACK", "To: [$peer_to]")
    ack_error = _request("ACK", _TARGET, _INVITE_BRANCH, "1 ACK", "[last_To:]")
    cancel = _request("CANCEL", _TARGET, _INVITE_BRANCH, "1 CANCEL", to)
    bye = _request("BYE", "[$peer_uri]", "[branch]", "2 BYE", "To: [$peer_to]")
    contact = '<ereg regexp="sips?:[^>]*" search_in="hdr" header="Contact:" assign_to="contact"/>'
    handler = "\n".join(
        [handler_recv(response=code, next_label="resume") for code in _PROVISIONAL]
        + [handler_recv(request="BYE", next_label="on_bye")]
        + [handler_recv(response=code, next_label="on_error") for code in _ERRORS]
        + [handler_recv(response=200, next_label="on_200", optional=False, extra_actions=contact)]
    )
    body = f"""<send retrans="500">{invite}<action>
<assignstr assign_to="s_inv" value="[field3]"/><todouble assign_to="t_inv" variable="s_inv"/>
<assignstr assign_to="s_ans" value="[field4]"/><todouble assign_to="t_ans" variable="s_ans"/>
{now_ms("give_up_at")}<add assign_to="give_up_at" variable="t_inv"/>
{now_ms("hang_up_at")}<add assign_to="hang_up_at" value="{2 * NEVER_MS}"/>
{set_phase(WAITING)}</action></send>

<label id="wait"/>
<nop><action>{now_ms("now")}
<assign assign_to="left1" variable="give_up_at"/><subtract assign_to="left1" variable="now"/>
<assign assign_to="left2" variable="hang_up_at"/><subtract assign_to="left2" variable="now"/>
<test assign_to="first1" variable="left1" compare="less_than" variable2="left2"/>
<test assign_to="due1" variable="left1" compare="less_than" value="1"/>
<test assign_to="due2" variable="left2" compare="less_than" value="1"/>
</action></nop>
<nop next="time_up" test="due1"/>
<nop next="time_up" test="due2"/>
<pause variable="left1" condexec="first1"/>
<pause variable="left2" condexec="first1" condexec_inverse="true"/>
<label id="time_up"/>
{jump_if_phase({WAITING: "cancel", TALKING: "bye"})}
<nop next="resume"/>

<label id="cancel"/>
<send retrans="500">{cancel}<action>{set_phase(CANCELLING)}</action></send>
<label id="hold_on"/>
<pause milliseconds="{NEVER_MS}"/>
<nop next="resume"/>

<label id="answered"/>
<send>{ack_2xx}<action>
<test assign_to="cancelled" variable="phase" compare="equal" value="{CANCELLING}"/>
{set_phase(TALKING)}{now_ms("hang_up_at")}<add assign_to="hang_up_at" variable="t_ans"/>
{stream}</action></send>
<nop next="bye" test="cancelled"/>
<nop next="wait"/>

<label id="bye"/>
<send retrans="500">{bye}<action>{set_phase(LEAVING)}</action></send>
<nop next="hold_on"/>

<label id="on_200"/>
<nop next="done" test="is_bye"/>
<nop next="resume" test="is_can"/>
<nop next="reack" test="talked"/>
<nop><action><assign assign_to="talked" value="1"/>
<assignstr assign_to="peer_to" value="[$to_hdr]"/>
<assignstr assign_to="peer_uri" value="[$contact]"/></action></nop>
<nop next="answered"/>
<label id="reack"/>
<send>{ack_2xx}</send>
<nop next="resume"/>

<label id="on_bye"/>
<send>{OK_TO_LAST}<action>
<test assign_to="glare" variable="phase" compare="equal" value="{LEAVING}"/>
{set_phase(ENDED)}</action></send>
<nop next="hold_on" test="glare"/>
<nop next="done"/>

<label id="on_error"/>
<nop next="done" test="is_bye"/>
<nop next="resume" test="is_can"/>
<send>{ack_error}<action>{set_phase(ENDED)}</action></send>
<nop next="done"/>

<label id="resume"/>
{jump_if_phase({WAITING: "wait", TALKING: "wait", CANCELLING: "hold_on", LEAVING: "hold_on"})}
<nop next="done"/>

<label id="_unexp.main"/>
{handler}
<nop next="on_200"/>
<label id="done"/>"""
    # `talked` is a double that <nop test> reads as "set": it is assigned only once answered.
    return scenario("caller crowd", body)


def even_free_port() -> int:
    """A free UDP block for sipp's media (tests/rig/sipp.py: sipp_media_port)."""
    return sipp_media_port()


def rate_args(per_second: float) -> tuple[str, ...]:
    """sipp -r/-rp for a possibly fractional rate (e.g. 7.5/s = 15 per 2000 ms)."""
    rate = Fraction(per_second).limit_denominator(100)
    return ("-r", str(rate.numerator), "-rp", str(rate.denominator * 1000))


@dataclass
class CallerCrowd:
    """A running sipp that places every call of `plans`."""

    run: SippRun
    plans: tuple[CallPlan, ...]

    def wait(self, timeout: float) -> int:
        """sipp's exit code (0: every call followed the scenario)."""
        return self.run.wait(timeout)

    def finish(self, timeout: float) -> None:
        code = self.wait(timeout)
        assert code == 0, f"sipp {self.run.name} exited {code}:\n{self.run.output()}"

    def wire(self) -> list[CallerLeg]:
        """Every call placed so far, as the wire saw it (times in UTC)."""
        return read_callers(self.run, zone=UTC)

    def wait_for_wire(
        self, ready: Callable[[list[CallerLeg]], bool], *, timeout: float, what: str
    ) -> list[CallerLeg]:
        """Poll the wire until `ready(legs)`, e.g. "3 calls answered" (sipp flushes its trace
        after each message, so this is live); returns the legs then."""

        def probe() -> tuple[list[CallerLeg]] | None:
            legs = self.wire()
            return (legs,) if ready(legs) else None

        return wait_until(probe, timeout=timeout, what=what)[0]

    def stop(self) -> None:
        self.run.kill()


def start_callers(
    workdir: Path,
    plans: Sequence[CallPlan],
    *,
    target: str,
    did: str,
    rate: float,
    speech: Path | None,
    name: str = "callers",
    timeout_s: int = 120,
    local_ip: str = "127.0.0.1",
) -> CallerCrowd:
    """Place len(plans) calls to `did` via `target` ("127.0.0.1:<sip port>") at `rate`/s,
    from `local_ip`."""
    workdir.mkdir(parents=True, exist_ok=True)
    local_port = free_port(socket.SOCK_DGRAM)
    inf = injection_file(workdir / f"{name}.csv", plans, local_port)
    run = start_sipp(
        workdir,
        name,
        caller_crowd_scenario(speech),
        local_port=local_port,
        media_port=even_free_port(),
        remote=target,
        service=did,
        timeout_s=timeout_s,
        calls=len(plans),
        concurrency=len(plans),
        extra_args=("-inf", str(inf), "-trace_msg", *rate_args(rate)),
        env=SIPP_ENV,
        local_ip=local_ip,
    )
    return CallerCrowd(run, tuple(plans))
