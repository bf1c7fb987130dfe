"""How long a caller waits because of the machine, early dial off and on.

One private Asterisk, one `astreinte run`, four on-call DIDs ringing four sipp
agents that all take the same human time to answer (`--ring-ms`) and to press 1
once they hear the prompt (`--key-ms`, their reaction):

  before      early dial off; the agent presses 1 only after the whole prompt
              (what agents were told to do: the baseline)
  barge-in    early dial off; the agent presses 1 at once (during the prompt)
  early-full  early_dial: true, announcement_mode: full; presses 1 at once
  early-cut   early_dial: true, announcement_mode: until_accepted; presses 1 at once

The machine-imposed wait of one call, by Asterisk's own event timestamps:

  caller's INVITE (its channel created) -> both legs in the bridge
  minus the agent's own time: ring-to-answer (agent leg created -> Up) and the
  reaction the agent needs to press 1 (`--key-ms` after answering)

so with barge-in, anything the agent hears before the key counts (the prompt),
and the announcement before the agent's phone rings, is the machine's.
sipp places the calls interleaved (one per flow in turn) in ONE run, so that
machine noise hits all four alike; figures are medians, with the ratio to the
baseline measured in the same run.

    .venv/bin/python bench/bench_early_dial.py [--calls 10] [--ring-ms 2000] [--key-ms 700]
    .venv/bin/python bench/bench_early_dial.py --smoke     # CI: 1 call per flow
    ... --asterisk-prefix /opt/astreinte-asterisk/22.x-... (default:
        $ASTREINTE_ASTERISK_PREFIX, else the system asterisk)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ari_timeline import channel_timeline  # noqa: E402
from bench_call_setup import (  # noqa: E402
    PASSWORD,
    Observer,
    _ms,
)
from bench_rig import start_agent_phone, start_service  # noqa: E402

from astreinte_ari.devtools.localpbx import SOUNDS_DIR, LocalAsterisk, free_port  # noqa: E402
from astreinte_ari.devtools.pbxinstall import AsteriskInstall  # noqa: E402
from tests.e2e.rig import make_speech  # noqa: E402
from tests.rig.crowd import even_free_port  # noqa: E402
from tests.rig.sipp import agent_scenario, caller_scenario, start_sipp  # noqa: E402

# flow -> (DID, agent mobile, line options, presses 1 only after the prompt)
FLOWS: dict[str, tuple[str, str, str, bool]] = {
    "before": ("+33180000301", "+33619000011", "early_dial: false", True),
    "barge-in": ("+33180000302", "+33619000012", "early_dial: false", False),
    "early-full": (
        "+33180000303",
        "+33619000013",
        "early_dial: true, announcement_mode: full",
        False,
    ),
    "early-cut": (
        "+33180000304",
        "+33619000014",
        "early_dial: true, announcement_mode: until_accepted",
        False,
    ),
}
BASELINE = "before"


def _length_ms(sound: str) -> int:
    return int(((SOUNDS_DIR / "fr" / f"{sound}.wav").stat().st_size - 44) / 16)


def _line(flow: str, did: str, options: str) -> str:
    settings = "".join(f"    {option.strip()}\n" for option in options.split(","))
    person = flow.replace("-", "_")
    return (
        f'  "{did}":\n    name: {flow}\n    team: bench\n{settings}'
        f"    after_hours: {{hops: [{{person: {person}, timeout: 20}}], finally: voicemail}}\n"
    )


def service_config(ari_url: str, work: Path, sip_port: int) -> str:
    lines = "".join(_line(flow, did, options) for flow, (did, _, options, _) in FLOWS.items())
    people = "".join(
        f'      {flow.replace("-", "_")}: {{name: {flow}, mobile: "{mobile}"}}\n'
        for flow, (_, mobile, _, _) in FLOWS.items()
    )
    return f"""timezone: Europe/Paris
ari: {{url: "{ari_url}", username: astreinte, app: astreinte}}
pbx: {{sip: "udp:127.0.0.1:{sip_port}"}}
database: {{url: "sqlite:///{work / "audit.db"}"}}
storage: {{recordings_dir: "{work / "rec"}"}}
trunk: {{dial: "PJSIP/{{number}}", caller_id: "+33180000000", allowed_prefixes: ["+3361"]}}
defaults: {{accept_timeout: 6, caller_rate_limit: null}}
lines:
{lines}teams:
  bench:
    people:
{people}"""


Figures = dict[str, dict[str, list[float]]]  # flow -> measure -> one value per call


def analyse(events: list[dict[str, object]], prompt_ms: int) -> Figures:
    """Machine-imposed wait (s) per call, per flow. The agent's own time: its leg
    created -> Up (ringing until the human answers), then Up -> its DTMF 1 received
    (the reaction and the key itself), less the prompt when told to wait for it."""
    did_flow = {did: flow for flow, (did, _, _, _) in FLOWS.items()}
    mobile_flow = {mobile: flow for flow, (_, mobile, _, _) in FLOWS.items()}
    t = channel_timeline(events, did_flow, mobile_flow)
    callers, agents, created, dtmf, entered = t.callers, t.agents, t.created, t.dtmf, t.entered
    figures: Figures = {}
    for flow, (_, _, _, after_prompt) in FLOWS.items():
        measures: dict[str, list[float]] = defaultdict(list)
        figures[flow] = measures
        for caller, agent in zip(callers[flow], agents[flow], strict=False):
            if caller in entered and agent in entered and agent in dtmf:
                bridged = max(entered[caller], entered[agent])
                prompt_s = prompt_ms / 1000 if after_prompt else 0.0
                agent_own = (dtmf[agent] - created[agent]) - prompt_s
                measures["wait"].append(bridged - created[caller] - agent_own)
                measures["dial"].append(created[agent] - created[caller])
                measures["bridge"].append(bridged - dtmf[agent])
    return figures


def report(figures: Figures, ring_ms: int, key_ms: int, calls: int) -> None:
    print(
        f"\nmachine-imposed wait: caller's INVITE -> bridged, minus the agent's own "
        f"~{ring_ms} ms ring-to-answer and ~{key_ms} ms answer-to-key (s; Asterisk's clock)"
    )
    print(
        f"  {'flow':<11} {'n':>3} {'median':>8} {'p90':>8}  {'vs ' + BASELINE:>10}"
        f"  {'INVITE->agent leg':>17}  {'DTMF->bridged':>13}"
    )
    waits = {flow: figures[flow]["wait"] for flow in FLOWS}
    base = _ms(waits[BASELINE], 0.5) / 1000
    for flow in FLOWS:
        values = waits[flow]
        median = _ms(values, 0.5) / 1000
        ratio = median / base if base > 0 else float("nan")
        dial, bridge = _ms(figures[flow]["dial"], 0.5), _ms(figures[flow]["bridge"], 0.5)
        print(
            f"  {flow:<11} {len(values):>3} {median:>8.3f} {_ms(values, 0.9) / 1000:>8.3f}"
            f"  {ratio:>9.3f}x  {dial:>14.1f} ms  {bridge:>10.1f} ms"
        )
    best = min(_ms(waits[f], 0.5) / 1000 for f in ("early-full", "early-cut"))
    print(
        f"  early dial on (best mode) = {best:.3f} s vs {base:.3f} s before: "
        f"ratio {best / base:.3f}x (target <= 1 s of machine-imposed wait)"
    )
    missing = [f for f in FLOWS if len(waits[f]) < calls]
    if missing:
        print(f"  calls not measured (not bridged?): {missing}")


async def measure(
    pbx: LocalAsterisk, work: Path, calls: int, ports: dict[str, int], ring_ms: int, key_ms: int
) -> Figures:
    observer = Observer(pbx.ari_url)
    task = asyncio.create_task(observer.run())
    await asyncio.wait_for(observer.ready.wait(), 10)
    # Real phones send media at once: a silent caller would cost 500 ms of Answer()
    # waiting for its first frame (Asterisk's own wait), which is not the service's.
    speech = make_speech(work / "speech.ul")
    prompt_ms = _length_ms("astreinte-press-1")
    announcement_ms = _length_ms("astreinte-after-hours")
    runs = [
        start_agent_phone(
            work,
            f"agent-{flow}",
            agent_scenario(
                "accept",
                ring_ms=ring_ms,
                dtmf_after_ms=key_ms + (prompt_ms if after_prompt else 0),
                speech=speech,
            ),
            ports[flow],
            calls,
        )
        for flow, (_, _, _, after_prompt) in FLOWS.items()
    ]
    csv = work / "dids.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{did};\n" for did, _, _, _ in FLOWS.values()))
    hold_ms = announcement_ms + ring_ms + key_ms + prompt_ms + 3000
    caller = start_sipp(
        work / "sipp",
        "callers",
        caller_scenario(
            number="+33199000001", name="Bench", hold_ms=hold_ms, speech=speech, target="[field0]"
        ),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=even_free_port(),
        remote=f"127.0.0.1:{pbx.sip_port}",
        calls=len(FLOWS) * calls,
        concurrency=len(FLOWS) * calls,
        timeout_s=600,
        extra_args=("-inf", str(csv), "-r", "1"),
    )
    loop = asyncio.get_running_loop()
    codes = [await loop.run_in_executor(None, run.wait, 900) for run in (caller, *runs)]
    await asyncio.sleep(1)
    task.cancel()
    print(f"sipp exit codes (caller, agents): {codes}")
    return analyse(observer.events, prompt_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10, help="measured calls per flow")
    parser.add_argument("--ring-ms", type=int, default=2000, help="agent's ring-to-answer")
    parser.add_argument("--key-ms", type=int, default=700, help="agent's answer-to-key")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI")
    parser.add_argument("--asterisk-prefix", type=Path, default=None)
    args = parser.parse_args()
    install = (
        AsteriskInstall.from_prefix(args.asterisk_prefix)
        if args.asterisk_prefix
        else AsteriskInstall.from_env()
    )
    if args.smoke:
        args.calls = 1
    work = Path(tempfile.mkdtemp(prefix="astreinte-bench-early-"))
    ports = {flow: free_port(socket.SOCK_DGRAM) for flow in FLOWS}
    pbx = LocalAsterisk(
        work / "asterisk",
        ari_password=PASSWORD,
        mobiles={mobile: ports[flow] for flow, (_, mobile, _, _) in FLOWS.items()},
        rtp_ports=2000,
        install=install,
    )
    pbx.start()
    service = None
    try:
        service = start_service(work, service_config(pbx.ari_url, work, pbx.sip_port), PASSWORD)
        print(
            f"Asterisk {pbx.cli('core show version').split()[1]}, {os.cpu_count()} cores; "
            f"{args.calls} calls per flow, interleaved; announcement "
            f"{_length_ms('astreinte-after-hours')} ms, prompt {_length_ms('astreinte-press-1')} ms"
        )
        figures = asyncio.run(measure(pbx, work, args.calls, ports, args.ring_ms, args.key_ms))
        report(figures, args.ring_ms, args.key_ms, args.calls)
        print(f"\nwork dir: {work}")
        return 0
    finally:
        if service is not None and service.poll() is None:
            service.terminate()
            try:
                service.wait(30)
            except subprocess.TimeoutExpired:
                service.kill()
        pbx.stop()
        if os.environ.get("ASTREINTE_BENCH_KEEP") is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
