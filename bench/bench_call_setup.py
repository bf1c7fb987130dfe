"""What the service adds to call setup, against plain dialplan and a minimal ARI app.

One private Asterisk, three on-call DIDs that run the same flow (announcement,
ring the agent, "press 1", bridge):

  dialplan  Playback + Dial(U(gosub: Read 1 digit))      - no ARI at all
  floor     bench/minimal_ari_app.py                      - the least an ARI app does
  service   `astreinte run` (audit, state machine, ...)  - this project

sipp places the calls interleaved A, B, C, A, B, C... in ONE run so that
machine noise hits all three alike; sipp agents answer and press 1 (RFC 2833).
An observer ARI app (subscribeAll) timestamps, with Asterisk's own clock:
  - agent leg created minus (caller answered + announcement length)  -> dial delay
  - both legs in the bridge minus the agent's DTMF '1'              -> accept delay
Then a load phase holds N concurrent calls on the floor and on the service and
samples their RSS and CPU.

    .venv/bin/python bench/bench_call_setup.py [--calls 20] [--load 200] [--talk 30]
    .venv/bin/python bench/bench_call_setup.py --smoke      # CI: 2 calls per flow, load 20
    ... --asterisk-prefix /opt/astreinte-asterisk/22.x-...   # that Asterisk (default:
        $ASTREINTE_ASTERISK_PREFIX, else the system asterisk)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ari_timeline import channel_timeline  # noqa: E402  (bench/, the script's own folder)
from bench_rig import start_agent_phone, start_service  # noqa: E402

from astreinte_ari.devtools.localpbx import SOUNDS_DIR, LocalAsterisk, free_port  # noqa: E402
from astreinte_ari.devtools.pbxinstall import AsteriskInstall  # noqa: E402
from tests.rig.crowd import even_free_port  # noqa: E402
from tests.rig.sipp import agent_scenario, caller_scenario, start_sipp  # noqa: E402

PASSWORD = "bench-" + os.urandom(6).hex()
FLOWS = {  # flow -> (DID, agent mobile)
    "dialplan": ("+33180000201", "+33619000001"),
    "floor": ("+33180000202", "+33619000002"),
    "service": ("+33180000203", "+33619000003"),
}
ANNOUNCEMENT = SOUNDS_DIR / "fr" / "astreinte-after-hours.wav"

DIALPLAN = f"""
[astreinte-inbound]
exten => {FLOWS["dialplan"][0]},1,Goto(bench-plain,s,1)
exten => {FLOWS["floor"][0]},1,Goto(bench-floor,s,1)

[bench-plain]
exten => s,1,Answer()
 same => n,Playback({SOUNDS_DIR}/fr/astreinte-after-hours)
 same => n,Dial(PJSIP/{FLOWS["dialplan"][1]},20,U(bench-accept))
 same => n,Hangup()

[bench-accept]
exten => s,1,Read(KEY,{SOUNDS_DIR}/fr/astreinte-press-1,1,,1,6)
 same => n,GotoIf($["${{KEY}}" = "1"]?ok)
 same => n,Set(GOSUB_RESULT=ABORT)
 same => n(ok),Return()

[bench-floor]
exten => s,1,Answer()
 same => n,Stasis(benchfloor)
 same => n,Hangup()
"""


def service_config(ari_url: str, work: Path, sip_port: int) -> str:
    did, mobile = FLOWS["service"]
    return f"""timezone: Europe/Paris
ari: {{url: "{ari_url}", username: astreinte, app: astreinte}}
pbx: {{sip: "udp:127.0.0.1:{sip_port}"}}
database: {{url: "sqlite:///{work / "audit.db"}"}}
storage: {{recordings_dir: "{work / "rec"}"}}
trunk: {{dial: "PJSIP/{{number}}", caller_id: "+33180000000", allowed_prefixes: ["+3361"]}}
defaults: {{accept_timeout: 6, caller_rate_limit: null}}
lines:
  "{did}":
    name: Bench
    team: bench
    busy_agents: ring  # one sipp agent takes every call at once
    after_hours: {{hops: [{{person: agent, timeout: 20}}], finally: voicemail}}
teams:
  bench:
    people:
      agent: {{name: Bench Agent, mobile: "{mobile}"}}
"""


class Observer:
    """Collects timestamped channel/bridge events for every channel (subscribeAll)."""

    def __init__(self, ari_url: str) -> None:
        self.ari_url = ari_url
        self.events: list[dict[str, object]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        token = base64.b64encode(f"astreinte:{PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            params = {"app": "benchobserver", "subscribeAll": "true"}
            async with http.ws_connect(f"{self.ari_url}/ari/events", params=params) as ws:
                self.ready.set()
                async for msg in ws:
                    self.events.append(json.loads(msg.data))


def analyse(
    events: list[dict[str, object]], announcement_s: float
) -> dict[str, dict[str, list[float]]]:
    did_flow = {did: flow for flow, (did, _) in FLOWS.items()}
    mobile_flow = {mobile: flow for flow, (_, mobile) in FLOWS.items()}
    t = channel_timeline(events, did_flow, mobile_flow)
    callers, agents, created, up, dtmf, entered = (
        t.callers,
        t.agents,
        t.created,
        t.up,
        t.dtmf,
        t.entered,
    )
    results: dict[str, dict[str, list[float]]] = {}
    for flow in FLOWS:
        dial, accept = [], []
        for caller, agent in zip(callers[flow], agents[flow], strict=False):
            if caller in up and agent in created:
                dial.append(created[agent] - up[caller] - announcement_s)
            if agent in dtmf and caller in entered and agent in entered:
                accept.append(max(entered[caller], entered[agent]) - dtmf[agent])
        results[flow] = {"dial": dial, "accept": accept}
    return results


def _ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: dict[str, dict[str, list[float]]]) -> None:
    for metric, title in (
        ("dial", "end of announcement -> agent leg created"),
        ("accept", "agent's DTMF 1 -> both legs bridged"),
    ):
        print(f"\n{title} (ms; Asterisk's clock)")
        print(f"  {'flow':<9} {'n':>3} {'median':>8} {'p90':>8}")
        for flow in FLOWS:
            values = results[flow][metric]
            print(f"  {flow:<9} {len(values):>3} {_ms(values, 0.5):>8.1f} {_ms(values, 0.9):>8.1f}")
        floor = _ms(results["floor"][metric], 0.5)
        svc = _ms(results["service"][metric], 0.5)
        plain = _ms(results["dialplan"][metric], 0.5)
        ratio = svc / floor if floor > 0 else float("nan")
        print(
            f"  service - floor = {svc - floor:+.1f} ms; service / floor = {ratio:.2f}x "
            f"(target <= 1.25x); service - dialplan = {svc - plain:+.1f} ms"
        )


def proc_usage(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds used so far) of a process, from /proc."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


def load_phase(
    pbx: LocalAsterisk, work: Path, flow: str, pid: int, calls: int, talk_s: int, agent_port: int
) -> str:
    did, _ = FLOWS[flow]
    rate = 7.5
    agents = start_sipp(
        work / f"load-{flow}",
        "agents",
        agent_scenario("accept", dtmf_after_ms=1000),
        local_port=agent_port,
        media_port=even_free_port(),
        calls=calls,
        concurrency=calls + 20,
        timeout_s=900,
    )
    callers = start_sipp(
        work / f"load-{flow}",
        "callers",
        caller_scenario(
            number="+3319800[call_number]", name="Load", hold_ms=(talk_s + 10) * 1000, speech=None
        ),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=even_free_port(),
        remote=f"127.0.0.1:{pbx.sip_port}",
        service=did,
        calls=calls,
        concurrency=calls + 20,
        timeout_s=900,
        extra_args=("-r", str(int(rate * 2)), "-rp", "2000"),
    )
    ramp = calls / rate
    time.sleep(ramp + 12)  # all calls placed, announcement + accept done: plateau
    bridged = sum(1 for b in pbx.ari_get("/bridges") if len(b["channels"]) == 2)  # type: ignore[union-attr]
    rss0, cpu0 = proc_usage(pid)
    time.sleep(10)
    rss1, cpu1 = proc_usage(pid)
    cpu_pct = 100 * (cpu1 - cpu0) / 10
    ok_callers, ok_agents = callers.wait(900), agents.wait(120)
    return (
        f"  {flow:<8} {bridged:>4} bridged calls: RSS {max(rss0, rss1):6.1f} MB, "
        f"CPU {cpu_pct:5.1f} % of a core ({cpu_pct / max(bridged, 1):.3f} %/call); "
        f"sipp exit codes callers={ok_callers} agents={ok_agents}"
    )


async def measure(pbx: LocalAsterisk, work: Path, calls: int, ports: dict[str, int]) -> None:
    observer = Observer(pbx.ari_url)
    task = asyncio.create_task(observer.run())
    await asyncio.wait_for(observer.ready.wait(), 10)
    speech = work / "speech.ul"
    subprocess.run(
        f"espeak-ng -v fr -w {work}/s.wav 'Bonjour, test de charge.' && "
        f"sox {work}/s.wav -r 8000 -c 1 -t ul {speech}",
        shell=True,
        check=True,
    )
    runs = [
        start_agent_phone(
            work,
            f"agent-{flow}",
            agent_scenario("accept", dtmf_after_ms=1000, speech=speech),
            ports[flow],
            calls,
        )
        for flow in FLOWS
    ]
    csv = work / "dids.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{FLOWS[f][0]};\n" for f in FLOWS))
    caller = start_sipp(
        work / "sipp",
        "callers",
        caller_scenario(
            number="+33199000001", name="Bench", hold_ms=16000, speech=speech, target="[field0]"
        ),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=even_free_port(),
        remote=f"127.0.0.1:{pbx.sip_port}",
        calls=3 * calls,
        concurrency=3 * calls,
        timeout_s=600,
        extra_args=("-inf", str(csv), "-r", "1"),
    )
    loop = asyncio.get_running_loop()
    codes = [await loop.run_in_executor(None, run.wait, 900) for run in (caller, *runs)]
    await asyncio.sleep(1)
    task.cancel()
    print(f"sipp exit codes (caller, agents): {codes}")
    announcement_s = (ANNOUNCEMENT.stat().st_size - 44) / 16000
    (work / "events.json").write_text(json.dumps(observer.events))
    report(analyse(observer.events, announcement_s))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="measured calls per flow")
    parser.add_argument("--load", type=int, default=200, help="concurrent calls (0: skip)")
    parser.add_argument("--talk", type=int, default=30, help="talk time in the load phase (s)")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument(
        "--asterisk-prefix",
        type=Path,
        default=None,
        help="the Asterisk installed under this prefix (default: $ASTREINTE_ASTERISK_PREFIX, "
        "else the system asterisk)",
    )
    args = parser.parse_args()
    install = (
        AsteriskInstall.from_prefix(args.asterisk_prefix)
        if args.asterisk_prefix
        else AsteriskInstall.from_env()
    )
    if args.smoke:
        args.calls, args.load, args.talk = 2, 20, 5
    work = Path(tempfile.mkdtemp(prefix="astreinte-bench-"))
    ports = {flow: free_port(socket.SOCK_DGRAM) for flow in FLOWS}
    mobiles = {FLOWS[f][1]: ports[f] for f in FLOWS}
    pbx = LocalAsterisk(
        work / "asterisk",
        ari_password=PASSWORD,
        mobiles=mobiles,
        extra_dialplan=DIALPLAN,
        rtp_ports=10000,
        install=install,
    )
    pbx.start()
    floor = service = None
    try:
        floor = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "minimal_ari_app.py"),
                pbx.ari_url,
                "astreinte",
                PASSWORD,
                "benchfloor",
                f"PJSIP/{FLOWS['floor'][1]}",
                str(SOUNDS_DIR),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert floor.stdout is not None and "ready" in floor.stdout.readline()
        service = start_service(work, service_config(pbx.ari_url, work, pbx.sip_port), PASSWORD)
        print(
            f"Asterisk {pbx.cli('core show version').split()[1]}, {os.cpu_count()} cores; "
            f"{args.calls} calls per flow, interleaved"
        )
        asyncio.run(measure(pbx, work, args.calls, ports))
        if args.load:
            # Reuse the floor's and the service's agent numbers on a fresh sipp each.
            print(f"\nload: {args.load} calls at 7.5/s, {args.talk}s talk, sampled at plateau")
            for flow, proc in (("floor", floor), ("service", service)):
                print(
                    load_phase(pbx, work, flow, proc.pid, args.load, args.talk, ports[flow]),
                    flush=True,
                )
        print(f"\nwork dir: {work}")
        return 0
    finally:
        for proc in (service, floor):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        pbx.stop()
        if os.environ.get("ASTREINTE_BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
