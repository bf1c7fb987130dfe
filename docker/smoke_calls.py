"""Helpers of docker/smoke.sh: free ports, and one real call with sipp.

Run from the repository root with PYTHONPATH=. (standard library only, plus the
sipp scenarios of tests/rig/sipp.py, the ones the e2e tests use):

  python3 docker/smoke_calls.py ports
      prints NAME=port lines (shell-sourceable), every port free right now
  python3 docker/smoke_calls.py call --sip-port P --did D --agent-port A --workdir W ...
      an agent's mobile (sipp UAS: rings, answers, presses 1) and a caller
      (sipp UAC: calls the DID, stays --hold-ms); exit 0 when both calls went
      through (the agent answered and the call ended cleanly on both sides);
      prints the delay from the caller's INVITE to the agent's INVITE.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

from tests.rig.sipp import SippRun, agent_scenario, caller_scenario, start_sipp


def _free(kind: int) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, kind)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_free(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _even_udp() -> int:
    """An even UDP port whose odd neighbour is free too (RTP + RTCP, as sipp -mp uses)."""
    for _ in range(200):
        port = _free(socket.SOCK_DGRAM) & ~1
        if port > 1024 and _udp_free(port) and _udp_free(port + 1):
            return port
    raise RuntimeError("no free even UDP port pair")


def _rtp_range(size: int = 200) -> tuple[int, int]:
    """A range of `size` UDP ports, all free now, for Asterisk's rtp.conf."""
    for base in range(30000, 60000 - size, size):
        if all(_udp_free(p) for p in range(base, base + size)):
            return base, base + size - 1
    raise RuntimeError(f"no {size} consecutive free UDP ports in 30000-60000")


def cmd_ports(_: argparse.Namespace) -> int:
    taken: set[int] = set()

    def pick(kind: int) -> int:
        while True:
            port = _free(kind)
            if port not in taken:
                taken.add(port)
                return port

    tcp = {
        n: pick(socket.SOCK_STREAM)
        for n in ("ARI_PORT", "PG_PORT", "METRICS_PORT", "LINKS_PORT", "SMTP_PORT", "SMS_PORT")
    }
    udp = {n: pick(socket.SOCK_DGRAM) for n in ("SIP_PORT", "AGENT_PORT")}
    start, end = _rtp_range()
    for name, port in {**tcp, **udp, "RTP_START": start, "RTP_END": end}.items():
        print(f"{name}={port}")
    return 0


def _messages(run: SippRun) -> list[tuple[float, bool, str]]:
    """(time, sent?, first line) of every SIP message in sipp's -trace_msg log."""
    logs = sorted(run.log_path.parent.glob(f"{run.name}_*_messages.log"))
    out: list[tuple[float, bool, str]] = []
    stamp, sent, first = 0.0, False, False
    for line in logs[0].read_text(errors="replace").splitlines() if logs else []:
        if line.startswith("-----"):
            stamp = datetime.fromisoformat(" ".join(line.strip("- ").split()[:2])).timestamp()
        elif " message " in line and "bytes" in line:
            sent, first = " message sent" in line, True
        elif first and line.strip():
            out.append((stamp, sent, line.strip()))
            first = False
    return out


def _first(run: SippRun, *, sent: bool, starts: str) -> float | None:
    return next((t for t, s, m in _messages(run) if s is sent and m.startswith(starts)), None)


def cmd_call(args: argparse.Namespace) -> int:
    work = Path(args.workdir)
    tag = f"{args.label}-{time.monotonic_ns()}"
    agent = start_sipp(
        work,
        f"agent-{tag}",
        agent_scenario("accept", ring_ms=300, dtmf_after_ms=args.dtmf_after_ms),
        local_port=args.agent_port,
        media_port=_even_udp(),
        timeout_s=args.timeout,
        extra_args=("-trace_msg",),
        env={"TZ": "UTC"},
    )
    time.sleep(0.3)
    caller = start_sipp(
        work,
        f"caller-{tag}",
        caller_scenario(
            number="+33199000001", name="Docker smoke", hold_ms=args.hold_ms, speech=None
        ),
        local_port=_free(socket.SOCK_DGRAM),
        media_port=_even_udp(),
        remote=f"127.0.0.1:{args.sip_port}",
        service=args.did,
        timeout_s=args.timeout,
        extra_args=("-trace_msg",),
        env={"TZ": "UTC"},
    )
    ok = True
    try:
        for run, what in ((caller, "caller"), (agent, "agent")):
            try:
                code = run.wait(args.timeout + 10)
            except AssertionError as exc:
                print(f"{args.label}: {what} sipp did not finish: {exc}", file=sys.stderr)
                ok = False
                continue
            if code != 0:
                ok = False
                print(f"{args.label}: {what} sipp exit {code}:\n{run.output()}", file=sys.stderr)
    finally:
        caller.kill()
        agent.kill()
    sent = _first(caller, sent=True, starts="INVITE ")
    rung = _first(agent, sent=False, starts="INVITE ")
    answered = _first(agent, sent=True, starts="SIP/2.0 200")
    delay = f"{(rung - sent) * 1000:.0f} ms" if sent and rung else "n/a"
    print(
        f"{args.label}: caller {'ok' if ok else 'FAILED'}, agent "
        f"{'rung, answered, pressed 1' if answered else 'NOT answered'}; "
        f"caller INVITE -> agent INVITE {delay}"
    )
    return 0 if ok and answered else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ports").set_defaults(func=cmd_ports)
    call = sub.add_parser("call")
    call.add_argument("--sip-port", type=int, required=True)
    call.add_argument("--agent-port", type=int, required=True)
    call.add_argument("--did", required=True)
    call.add_argument("--workdir", required=True)
    call.add_argument("--label", default="call")
    call.add_argument("--hold-ms", type=int, default=14000)
    call.add_argument("--dtmf-after-ms", type=int, default=1500)
    call.add_argument("--timeout", type=int, default=60)
    call.set_defaults(func=cmd_call)
    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
