"""Who should answer the caller: the dialplan before Stasis(), or the app over ARI?

The project's dialplan answers before Stasis() because on Asterisk 16 an ARI
`answer` on a channel without media waited ~200 ms (fixed in 18.21/20.6/22).
This measures both ways on the Asterisk given, interleaved call by call:

  dialplan  Answer() then Stasis(): the app only starts the announcement
  ari       Stasis() on the ringing channel: the app answers, then plays

Figure: caller's channel created -> announcement started (PlaybackStarted),
both timestamps from Asterisk's own clock; plus the POST /answer round trip.
The caller streams speech once answered, as a phone does; --no-media makes it
send no RTP at all (the case where Asterisk waits for a first frame).

    .venv/bin/python bench/bench_answer.py [--calls 20] [--no-media] [--asterisk-prefix P]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astreinte_ari.devtools.localpbx import SOUNDS_DIR, LocalAsterisk, free_port  # noqa: E402
from astreinte_ari.devtools.pbxinstall import AsteriskInstall  # noqa: E402
from tests.e2e.rig import make_speech  # noqa: E402
from tests.rig.sipp import caller_scenario, start_sipp  # noqa: E402

PASSWORD = "bench-" + os.urandom(6).hex()
APP = "benchanswer"
DIDS = {"dialplan": "+33180000301", "ari": "+33180000302"}
ANNOUNCEMENT = SOUNDS_DIR / "fr" / "astreinte-after-hours"
DIALPLAN = f"""
[astreinte-inbound]
exten => {DIDS["dialplan"]},1,Answer()
 same => n,Stasis({APP},dialplan)
 same => n,Hangup()
exten => {DIDS["ari"]},1,Stasis({APP},ari)
 same => n,Hangup()
"""


def _ts(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


async def app(
    ari_url: str, results: dict[str, list[tuple[float, float]]], ready: asyncio.Event
) -> None:
    """Answers (mode 'ari') and plays; records setup and answer round-trip per call."""
    token = base64.b64encode(f"astreinte:{PASSWORD}".encode()).decode()
    pending: dict[str, tuple[str, float, float]] = {}  # playback id -> mode, created, answer_s
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as http:

        async def started(event: dict[str, object]) -> None:
            channel = event["channel"]
            assert isinstance(channel, dict)
            mode = str((event.get("args") or ["?"])[0])  # type: ignore[index]
            answer_s = 0.0
            if mode == "ari":
                t0 = time.perf_counter()
                async with http.post(f"{ari_url}/ari/channels/{channel['id']}/answer") as resp:
                    await resp.read()
                answer_s = time.perf_counter() - t0
            playback = f"bench-{channel['id']}"
            pending[playback] = (mode, _ts(str(channel["creationtime"])), answer_s)
            params = {"media": f"sound:{ANNOUNCEMENT}", "playbackId": playback}
            async with http.post(
                f"{ari_url}/ari/channels/{channel['id']}/play", params=params
            ) as r:
                await r.read()

        async with http.ws_connect(f"{ari_url}/ari/events", params={"app": APP}) as ws:
            ready.set()
            async for msg in ws:
                event = json.loads(msg.data)
                if event["type"] == "StasisStart":
                    asyncio.get_running_loop().create_task(started(event))
                elif event["type"] == "PlaybackStarted":
                    playback_id = str(event["playback"]["id"])
                    if playback_id in pending:
                        mode, created, answer_s = pending.pop(playback_id)
                        setup = _ts(str(event["timestamp"])) - created
                        results.setdefault(mode, []).append((setup, answer_s))


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(
    pbx: LocalAsterisk, work: Path, calls: int, media: bool
) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {}
    ready = asyncio.Event()
    task = asyncio.get_running_loop().create_task(app(pbx.ari_url, results, ready))
    await asyncio.wait_for(ready.wait(), 10)
    csv = work / "dids.csv"
    csv.write_text("SEQUENTIAL\n" + "".join(f"{did};\n" for did in DIDS.values()))
    caller = start_sipp(
        work / "sipp",
        "callers",
        caller_scenario(
            number="+33199000001",
            name="Bench",
            hold_ms=1500,
            speech=make_speech(work / "speech.ul") if media else None,
            target="[field0]",
        ),
        local_port=free_port(socket.SOCK_DGRAM),
        media_port=_media_port(),
        remote=f"127.0.0.1:{pbx.sip_port}",
        calls=2 * calls,
        concurrency=1,
        timeout_s=300,
        extra_args=("-inf", str(csv), "-r", "2"),
    )
    code = await asyncio.get_running_loop().run_in_executor(None, caller.wait, 400)
    await asyncio.sleep(0.5)  # the last PlaybackStarted is already in flight
    task.cancel()
    print(f"sipp exit code: {code}")
    return results


def _media_port() -> int:
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        if port % 2 == 0 and port < 65000:
            return port
    raise RuntimeError("no free even UDP port")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per mode")
    parser.add_argument("--asterisk-prefix", type=Path, default=None)
    parser.add_argument("--no-media", action="store_true", help="the caller sends no RTP")
    args = parser.parse_args()
    install = (
        AsteriskInstall.from_prefix(args.asterisk_prefix)
        if args.asterisk_prefix
        else AsteriskInstall.from_env()
    )
    work = Path(tempfile.mkdtemp(prefix="astreinte-bench-answer-"))
    pbx = LocalAsterisk(
        work / "asterisk", ari_password=PASSWORD, extra_dialplan=DIALPLAN, install=install
    )
    pbx.start()
    try:
        caller = "silent" if args.no_media else "speaking"
        print(
            f"Asterisk {pbx.version_string}, {os.cpu_count()} cores; "
            f"{args.calls} calls per mode, caller {caller}"
        )
        results = asyncio.run(measure(pbx, work, args.calls, not args.no_media))
    finally:
        pbx.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("mode       calls  created->announcement median (p90)   POST /answer median (p90)")
    for mode in DIDS:
        rows = results.get(mode, [])
        if not rows:
            print(f"{mode:<10} 0")
            continue
        setup = [r[0] for r in rows]
        answer = [r[1] for r in rows]
        print(
            f"{mode:<10} {len(rows):>5}  {_q(setup, 0.5):8.1f} ms ({_q(setup, 0.9):6.1f})"
            f"              {_q(answer, 0.5):6.1f} ms ({_q(answer, 0.9):6.1f})"
        )
    return 0 if all(len(results.get(m, [])) == args.calls for m in DIDS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
