"""What really went over the wire: per-call records from sipp's own message traces.

sipp's `-trace_msg` file (`<scenario>_<pid>_messages.log`) holds every SIP
message it sent or received, each after a line of 47 dashes and the time it
was sent/received, e.g.

    ----------------------------------------------- 2026-11-30 15:24:25.123456
    UDP message sent (499 bytes):

    INVITE sip:+33180000001@127.0.0.1:5060 SIP/2.0
    ...

The time is sipp's *local* time (localtime(3), so it follows sipp's TZ), with
no zone written: the reader must be told the zone (the rig starts sipp with
TZ=UTC; `zone=None` means this machine's local zone). Blocks whose dashed line
has no time ("Unexpected ... message received", "Ignoring ...") repeat a
message already logged and are skipped. sipp flushes the file after each
message, so it is complete even when sipp is killed.

A DTMF key press is RTP, not SIP: the agent scenarios of tests/rig/phones.py
log it with `<log>` (-trace_logs, `<scenario>_<pid>_logs.log`) as
"dtmf <Call-ID> <epoch seconds> <microseconds> <digit>", zone-free.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Literal

from tests.rig.sipp import SippRun

_BLOCK_START = re.compile(rb"^-{47}(?: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}))?\s*$")
_BLOCK_KIND = re.compile(rb"^\S+ (?:control )?message (sent|received)\b")
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3})\b")
_URI_USER = re.compile(r"<?\s*sips?:([^@>;\s]*)@")
_DISPLAY = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"|^\s*([^<"]*?)\s*<')
_DTMF_LOG = re.compile(r"^dtmf (\S+) (\d+)(?:\.\d*)? (\d+)(?:\.\d*)? (\S+)\s*$")
# RFC 3261 compact header forms, as some peers send them.
_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact"}


def _text(raw: bytes) -> str:
    # Caller IDs may hold any byte: keep them, reversibly (surrogateescape).
    return raw.decode("utf-8", "surrogateescape")


def to_utc(naive_local: datetime, zone: tzinfo | None) -> datetime:
    """A trace time (naive, in sipp's zone) as an aware UTC datetime.

    zone=None: this machine's local zone, with its DST rules (datetime.astimezone
    on a naive value asks the C library, as sipp's localtime(3) did)."""
    if zone is None:
        return naive_local.astimezone().astimezone(UTC)
    return naive_local.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SipMessage:
    """One SIP message as sipp logged it."""

    at: datetime  # aware, UTC
    sent: bool  # True: sipp sent it; False: sipp received it
    first_line: str
    headers: tuple[tuple[str, str], ...]  # (lower-case full name, value), in order

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    @property
    def status(self) -> int | None:
        match = _STATUS_LINE.match(self.first_line)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str | None:
        """The request method, None for a response."""
        return None if self.status is not None else self.first_line.split(" ", 1)[0]

    @property
    def call_id(self) -> str:
        return (self.header("call-id") or "").strip()

    @property
    def cseq_method(self) -> str:
        parts = (self.header("cseq") or "").split()
        return parts[1] if len(parts) > 1 else ""

    @property
    def request_user(self) -> str:
        """The user part of the Request-URI (a request's target number)."""
        parts = self.first_line.split(" ")
        match = _URI_USER.search(parts[1]) if len(parts) > 1 else None
        return match.group(1) if match else ""


def uri_user(header: str | None) -> str:
    """The user part of the first sip: URI in a From/To value ('' when none)."""
    match = _URI_USER.search(header or "")
    return match.group(1) if match else ""


def display_name(header: str | None) -> str:
    """The display name of a From/To value, unquoted ('' when none)."""
    match = _DISPLAY.match(header or "")
    if not match:
        return ""
    return match.group(1) if match.group(1) is not None else (match.group(2) or "")


def parse_trace(data: bytes, zone: tzinfo | None = None) -> list[SipMessage]:
    """Every sent/received SIP message of a -trace_msg file, in file order."""
    messages: list[SipMessage] = []
    for stamp, body in _blocks(data.split(b"\n")):
        kind = _BLOCK_KIND.match(body[0]) if body else None
        if kind is None:
            continue  # "message lost", or some other note
        lines = [line.rstrip(b"\r") for line in body[1:]]
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            continue
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line.strip():
                break  # the body (SDP) follows
            name, sep, value = line.partition(b":")
            if sep:
                key = _text(name).strip().lower()
                headers.append((_COMPACT.get(key, key), _text(value).strip()))
        at = to_utc(datetime.strptime(stamp.decode(), "%Y-%m-%d %H:%M:%S.%f"), zone)
        messages.append(SipMessage(at, kind.group(1) == b"sent", _text(lines[0]), tuple(headers)))
    return messages


def _blocks(lines: list[bytes]) -> Iterator[tuple[bytes, list[bytes]]]:
    stamp: bytes | None = None
    body: list[bytes] = []
    for line in lines:
        start = _BLOCK_START.match(line)
        if start is None:
            body.append(line)
            continue
        if stamp is not None:
            yield stamp, body
        stamp, body = start.group(1), []  # None: an untimed note, skipped
    if stamp is not None:
        yield stamp, body


def parse_dtmf_log(text: str) -> dict[str, tuple[datetime, str]]:
    """Call-ID -> (time, digit) of the first key press each agent leg logged."""
    return {call_id: presses[0] for call_id, presses in parse_dtmf_presses(text).items()}


def parse_dtmf_presses(text: str) -> dict[str, list[tuple[datetime, str]]]:
    """Call-ID -> every (time, digit) each agent leg logged, in order (an agent who
    was not connected may press again)."""
    presses: dict[str, list[tuple[datetime, str]]] = {}
    for line in text.splitlines():
        match = _DTMF_LOG.match(line.strip())
        if match:
            call_id, secs, micros, digit = match.groups()
            at = datetime.fromtimestamp(int(secs) + int(micros) / 1e6, UTC)
            presses.setdefault(call_id, []).append((at, digit))
    return presses


def _by_call(messages: Iterable[SipMessage]) -> dict[str, list[SipMessage]]:
    calls: dict[str, list[SipMessage]] = {}
    for message in messages:
        calls.setdefault(message.call_id, []).append(message)
    return calls


def _first(
    messages: Sequence[SipMessage], *, sent: bool | None = None, method: str | None = None
) -> SipMessage | None:
    return next(
        (
            m
            for m in messages
            if (sent is None or m.sent == sent) and (method is None or m.method == method)
        ),
        None,
    )


def _final_invite_response(messages: Sequence[SipMessage], *, sent: bool) -> SipMessage | None:
    return next(
        (
            m
            for m in messages
            if m.sent == sent and (m.status or 0) >= 200 and m.cseq_method == "INVITE"
        ),
        None,
    )


def _fmt(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%H:%M:%S.%f")[:-3]


@dataclass(frozen=True, slots=True)
class CallerLeg:
    """One call a sipp caller placed (sipp is the UAC, the PBX answers)."""

    call_id: str
    number: str  # From URI user part, as sent
    display_name: str
    from_header: str
    invite_at: datetime
    ringing_at: datetime | None  # first 180/183 received
    final_status: int | None  # final response to the INVITE: 200 = answered by the PBX
    final_at: datetime | None
    cancel_at: datetime | None  # CANCEL sent (the caller gave up before an answer)
    bye_at: datetime | None  # first BYE, from either side
    bye_by: Literal["caller", "pbx"] | None

    @property
    def answered(self) -> bool:
        return self.final_status == 200

    @property
    def ended_at(self) -> datetime | None:
        """When the call ended on the wire: BYE, else CANCEL, else an error final response."""
        if self.bye_at is not None:
            return self.bye_at
        if self.cancel_at is not None:
            return self.cancel_at
        if self.final_status is not None and self.final_status >= 300:
            return self.final_at
        return None

    @property
    def ended_by(self) -> Literal["caller", "pbx"] | None:
        if self.bye_at is not None:
            return self.bye_by
        if self.cancel_at is not None:
            return "caller"
        return "pbx" if self.ended_at is not None else None

    def describe(self) -> str:
        """One line for failure messages."""
        if self.bye_at is not None:
            end = f"BYE by {self.bye_by} {_fmt(self.bye_at)}"
        elif self.cancel_at is not None:
            end = f"CANCEL {_fmt(self.cancel_at)} (final {self.final_status})"
        elif self.ended_at is not None:
            end = f"ended by {self.final_status} {_fmt(self.final_at)}"
        else:
            end = "no end on the wire"
        answer = f"{self.final_status} {_fmt(self.final_at)}" if self.final_status else "none"
        return f"INVITE {_fmt(self.invite_at)}, final {answer}, {end}"


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """One call an agent's phone received (sipp is the UAS, the PBX calls it)."""

    call_id: str
    number: str  # the mobile rung: user part of the INVITE's Request-URI
    caller_id: str  # From user part: what the agent's screen shows
    invite_at: datetime
    ringing_at: datetime | None  # 180 sent
    answered_at: datetime | None  # 200 OK sent to the INVITE
    final_status: int | None  # final response sent: 200, 486, 603, 487...
    ack_at: datetime | None
    dtmf_at: datetime | None  # key press sent (from the scenario's <log>)
    dtmf: str | None
    cancel_at: datetime | None  # CANCEL received
    bye_at: datetime | None
    bye_by: Literal["agent", "pbx"] | None
    presses: tuple[datetime, ...] = ()  # every key press (dtmf_at is the first)

    @property
    def ended_at(self) -> datetime | None:
        if self.bye_at is not None:
            return self.bye_at
        if self.cancel_at is not None:
            return self.cancel_at
        if self.final_status is not None and self.final_status >= 300:
            return self.ack_at or self.invite_at
        return None

    @property
    def accepted_at(self) -> datetime | None:
        """When the agent said yes: the key press, else (no key involved) the answer."""
        return self.dtmf_at or self.answered_at

    def accepted_near(self, when: datetime) -> datetime | None:
        """The key press nearest `when` (an agent asked again pressed more than once)."""
        if not self.presses:
            return self.accepted_at
        return min(self.presses, key=lambda at: abs((at - when).total_seconds()))

    def describe(self) -> str:
        key = f"key {self.dtmf!r} {_fmt(self.dtmf_at)}" if self.dtmf_at else "no key"
        end = f"BYE by {self.bye_by} {_fmt(self.bye_at)}" if self.bye_at else "no BYE"
        if self.cancel_at is not None:
            end = f"CANCEL {_fmt(self.cancel_at)}"
        return (
            f"agent {self.number} leg {self.call_id}: INVITE {_fmt(self.invite_at)}, "
            f"final {self.final_status} {_fmt(self.answered_at)}, {key}, {end}"
        )


def caller_legs(messages: Iterable[SipMessage]) -> list[CallerLeg]:
    """A record per call whose INVITE sipp sent, in order of the INVITEs."""
    legs = []
    for call_id, msgs in _by_call(messages).items():
        invite = _first(msgs, sent=True, method="INVITE")
        if invite is None:
            continue
        final = _final_invite_response(msgs, sent=False)
        ringing = next((m for m in msgs if not m.sent and m.status in (180, 183)), None)
        cancel = _first(msgs, sent=True, method="CANCEL")
        bye = _first(msgs, method="BYE")
        from_header = invite.header("from") or ""
        legs.append(
            CallerLeg(
                call_id=call_id,
                number=uri_user(from_header),
                display_name=display_name(from_header),
                from_header=from_header,
                invite_at=invite.at,
                ringing_at=ringing.at if ringing else None,
                final_status=final.status if final else None,
                final_at=final.at if final else None,
                cancel_at=cancel.at if cancel else None,
                bye_at=bye.at if bye else None,
                bye_by=None if bye is None else ("caller" if bye.sent else "pbx"),
            )
        )
    return sorted(legs, key=lambda leg: leg.invite_at)


def agent_legs(
    messages: Iterable[SipMessage],
    dtmf: Mapping[str, tuple[datetime, str]] | None = None,
    presses: Mapping[str, Sequence[tuple[datetime, str]]] | None = None,
) -> list[AgentLeg]:
    """A record per call whose INVITE sipp received, in order of the INVITEs."""
    legs = []
    for call_id, msgs in _by_call(messages).items():
        invite = _first(msgs, sent=False, method="INVITE")
        if invite is None:
            continue
        final = _final_invite_response(msgs, sent=True)
        ringing = next((m for m in msgs if m.sent and m.status in (180, 183)), None)
        ack = _first(msgs, sent=False, method="ACK")
        cancel = _first(msgs, sent=False, method="CANCEL")
        bye = _first(msgs, method="BYE")
        press = (dtmf or {}).get(call_id)
        legs.append(
            AgentLeg(
                call_id=call_id,
                number=invite.request_user,
                caller_id=uri_user(invite.header("from")),
                invite_at=invite.at,
                ringing_at=ringing.at if ringing else None,
                answered_at=final.at if final and final.status == 200 else None,
                final_status=final.status if final else None,
                ack_at=ack.at if ack else None,
                dtmf_at=press[0] if press else None,
                dtmf=press[1] if press else None,
                cancel_at=cancel.at if cancel else None,
                bye_at=bye.at if bye else None,
                bye_by=None if bye is None else ("agent" if bye.sent else "pbx"),
                presses=tuple(at for at, _ in (presses or {}).get(call_id, ())),
            )
        )
    return sorted(legs, key=lambda leg: leg.invite_at)


@dataclass(frozen=True, slots=True)
class TraceFiles:
    messages: Path  # -trace_msg
    logs: Path  # -trace_logs (<log> actions)


def trace_files(run: SippRun) -> TraceFiles:
    """The trace files of one sipp process (named after its scenario file and pid)."""
    stem = f"{run.name}_{run.process.pid}"
    folder = run.log_path.parent
    return TraceFiles(folder / f"{stem}_messages.log", folder / f"{stem}_logs.log")


def read_callers(run: SippRun, zone: tzinfo | None = None) -> list[CallerLeg]:
    path = trace_files(run).messages
    return caller_legs(parse_trace(path.read_bytes(), zone)) if path.exists() else []


def read_agents(run: SippRun, zone: tzinfo | None = None) -> list[AgentLeg]:
    files = trace_files(run)
    if not files.messages.exists():
        return []
    log_text = files.logs.read_text(errors="replace") if files.logs.exists() else ""
    presses = parse_dtmf_log(log_text)
    every_press = parse_dtmf_presses(log_text)
    return agent_legs(parse_trace(files.messages.read_bytes(), zone), presses, every_press)
