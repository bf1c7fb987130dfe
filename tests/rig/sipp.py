"""sipp as real SIP peers: the caller (UAC) and the agents' mobiles (UAS).

Scenarios are generated per test from small templates, so each test states
exactly how each phone behaves (answer, ring forever, busy, press 1...).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from astreinte_ari.devtools.ports import udp_free
from tests.rig.sipp_xml import SDP

DTMF_PCAP_DIR = Path("/usr/share/sip-tester")

_SDP = SDP  # one SDP offer for every scenario (tests/rig/sipp_xml.py)

_RESPONSE_HEADERS = """[last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]"""

_OK_EMPTY = """<send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>"""


def _wrap(name: str, body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="{name}">\n{body}\n</scenario>\n'
    )


def caller_scenario(
    *,
    number: str,
    name: str,
    hold_ms: int,
    speech: Path | None,
    dtmf_flood: int = 0,
    target: str = "[service]",
    keys: Sequence[tuple[int, str]] = (),
) -> str:
    """Call the DID, stream speech, hang up after hold_ms unless hung up first.

    dtmf_flood: the caller hammers '1' (RFC 2833) that many times right after
    the answer: only the agent's own key may accept a call.
    keys: (pause in ms, key) pressed in turn after the answer (RFC 2833), before
    the speech starts (a menu's choice).
    """
    stream = (
        f'<nop><action><exec rtp_stream="{escape(str(speech))},-1,0"/></action></nop>'
        if speech
        else ""
    )
    pcap = DTMF_PCAP_DIR / "dtmf_2833_1.pcap"
    flood = "".join(
        f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop><pause milliseconds="250"/>'
        for _ in range(dtmf_flood)
    )
    pressed = ""
    for pause_ms, key in keys:
        key_pcap = DTMF_PCAP_DIR / f"dtmf_2833_{key}.pcap"
        if not key_pcap.is_file():  # sipp ships 0-9 only
            raise ValueError(f"no RFC 2833 pcap for key {key!r}: {key_pcap}")
        pressed += (
            f'<pause milliseconds="{pause_ms}"/>'
            f'<nop><action><exec play_pcap_audio="{key_pcap}"/></action></nop>'
        )
    stream = flood + pressed + stream
    from_hdr = f'"{escape(name)}" <sip:{escape(number)}@[local_ip]:[local_port]>;tag=[call_number]'
    return _wrap(
        "caller",
        f"""<send retrans="500"><![CDATA[
      INVITE sip:{target}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_hdr}
      To: <sip:{target}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_hdr}
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  {stream}
  <recv request="BYE" timeout="{hold_ms}" ontimeout="hangup"/>
  {_OK_EMPTY}
  <nop next="done"/>
  <label id="hangup"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_hdr}
      [last_To:]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <recv response="200"/>
  <label id="done"/>""",
    )


def _answer(ring_ms: int, capture_dialog: bool = False) -> str:
    """Ring, answer; with capture_dialog, keep From/To of the ACK for our own BYE."""
    ack = '<recv request="ACK"/>'
    if capture_dialog:
        ack = (
            '<recv request="ACK"><action>'
            '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="peer"/>'
            '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="me"/>'
            "</action></recv>"
        )
    return f"""<send><![CDATA[
      SIP/2.0 180 Ringing
      {_RESPONSE_HEADERS}
      Contact: <sip:[local_ip]:[local_port]>
      Content-Length: 0
    ]]></send>
  <pause milliseconds="{ring_ms}"/>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      {_RESPONSE_HEADERS}
      Contact: <sip:[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      {_SDP}
    ]]></send>
  {ack}"""


_WAIT_BYE = f"""<recv request="BYE"/>
  {_OK_EMPTY}"""


def agent_scenario(
    behaviour: str,
    *,
    speech: Path | None = None,
    ring_ms: int = 800,
    dtmf: str = "1",
    dtmf_after_ms: int = 1500,
    talk_ms: int = 0,
    later_keys: Sequence[tuple[int, str]] = (),
) -> str:
    """A mobile phone. behaviour: accept | silent | busy | reject | noanswer | hangup.

    accept: answers, presses `dtmf` (RFC 2833) after dtmf_after_ms, then each of
    `later_keys` (pause in ms, key) in turn, then waits for BYE (or hangs up itself
    talk_ms after the last key when talk_ms > 0).
    """
    invite = '<recv request="INVITE" crlf="true" rrs="true"/>'
    if behaviour in ("busy", "reject"):
        code = "486 Busy Here" if behaviour == "busy" else "603 Decline"
        body = f"""{invite}
  <send><![CDATA[
      SIP/2.0 {code}
      {_RESPONSE_HEADERS}
      Content-Length: 0
    ]]></send>
  <recv request="ACK"/>"""
    elif behaviour == "noanswer":
        body = f"""<recv request="INVITE" crlf="true">
    <action><ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:"
      assign_to="all,cseq"/></action>
  </recv>
  <Reference variables="all"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      {_RESPONSE_HEADERS}
      Contact: <sip:[local_ip]:[local_port]>
      Content-Length: 0
    ]]></send>
  <recv request="CANCEL"/>
  {_OK_EMPTY}
  <send><![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [$cseq] INVITE
      Content-Length: 0
    ]]></send>
  <recv request="ACK"/>"""
    elif behaviour == "silent":
        body = f"{invite}\n  {_answer(ring_ms)}\n  {_WAIT_BYE}"
    elif behaviour == "accept":
        pcap = DTMF_PCAP_DIR / f"dtmf_2833_{_pcap_name(dtmf)}.pcap"
        hangup_self = ""
        if talk_ms:
            hangup_self = f"""<recv request="BYE" timeout="{talk_ms}" ontimeout="bye"/>
  {_OK_EMPTY}
  <nop next="done"/>
  <label id="bye"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$me]
      To: [$peer]
      Call-ID: [call_id]
      CSeq: 10 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <recv response="200"/>
  <label id="done"/>"""
        later = "".join(
            f'<pause milliseconds="{pause_ms}"/>\n  <nop><action><exec play_pcap_audio='
            f'"{DTMF_PCAP_DIR / f"dtmf_2833_{_pcap_name(key)}.pcap"}"/></action></nop>\n  '
            for pause_ms, key in later_keys
        )
        body = f"""{invite}
  {_answer(ring_ms, capture_dialog=bool(talk_ms))}
  {_stream(speech)}
  <pause milliseconds="{dtmf_after_ms}"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  {later}{hangup_self or _WAIT_BYE}"""
    else:
        raise ValueError(f"unknown agent behaviour {behaviour!r}")
    return _wrap(f"agent {behaviour}", body)


def _stream(speech: Path | None) -> str:
    """A real phone sends media continuously once answered; sipp only if told to."""
    if speech is None:
        return ""
    return f'<nop><action><exec rtp_stream="{escape(str(speech))},-1,0"/></action></nop>'


def _pcap_name(digit: str) -> str:
    return {"#": "pound", "*": "star"}.get(digit, digit)


@dataclass
class SippRun:
    """One sipp process (one call), started in the background."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise AssertionError(
                f"sipp {self.name} did not finish in {timeout}s:\n{self.output()}"
            ) from exc

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def output(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        errors = sorted(self.log_path.parent.glob(f"{self.name}*_errors.log"))
        for path in errors:
            text += f"\n--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
        return text[-6000:]


def sipp_media_port() -> int:
    """A media port for sipp's -mp: even, with P+1..P+3 free too. sipp binds its audio
    RTP on P and its video RTP on P+2 (and exits 254 if either is taken: seen in CI,
    "Unable to bind video RTP socket ... Address already in use" when only P was
    checked); RTCP takes the odd ones."""
    for _ in range(200):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port % 2 or port > 65000:
            continue
        if all(udp_free(port + offset) for offset in range(4)):
            return port
    raise RuntimeError("no free block of 4 UDP ports for sipp's media")


def start_sipp(
    workdir: Path,
    name: str,
    scenario_xml: str,
    *,
    local_port: int,
    media_port: int,
    remote: str | None = None,
    service: str | None = None,
    timeout_s: int = 120,
    extra_args: tuple[str, ...] = (),
    calls: int = 1,
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
    local_ip: str = "127.0.0.1",
) -> SippRun:
    """Start sipp in the background; `env` adds to (or overrides) this process's environment,
    e.g. {"TZ": "UTC"} so that -trace_msg times are written in a known zone. `local_ip`:
    the address its SIP and media sockets bind to (another than loopback: tests/rig/cluster.py)."""
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = workdir / f"{name}.xml"
    scenario.write_text(scenario_xml)
    cmd = [
        "sipp",
        "-sf",
        str(scenario),
        "-i",
        local_ip,
        "-p",
        str(local_port),
        "-mi",
        local_ip,
        "-mp",
        str(media_port),
        "-m",
        str(calls),
        "-l",
        str(concurrency),
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        str(workdir / f"{name}_errors.log"),
    ]
    if service:
        cmd += ["-s", service]
    cmd += list(extra_args)  # e.g. ("-trace_msg",) for message timestamps
    if remote:
        cmd.append(remote)
    log_path = workdir / f"{name}.out"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else {**os.environ, **env},
        )
    time.sleep(0.05)
    return SippRun(name, process, log_path)
