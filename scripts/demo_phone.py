"""Be a phone in the demo: an agent's mobile (sipp UAS) or a caller (sipp UAC).

scripts/demo-phone.sh accept +33610000001    # Alice's mobile: answers, presses 1
scripts/demo-phone.sh busy +33610000001      # ... or busy / noanswer / silent / reject
scripts/demo-phone.sh call +33180000000      # call the on-call line, hang up after 40 s
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from astreinte_ari.localpbx import free_port
from tests.rig.sipp import agent_scenario, caller_scenario, start_sipp

DEMO_MOBILES = {"+33610000001": 5071, "+33610000002": 5072, "+33620000001": 5081}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("role", choices=["accept", "busy", "noanswer", "silent", "reject", "call"])
    parser.add_argument("number", help="the mobile to be, or the DID to call")
    parser.add_argument("--pbx", default="127.0.0.1:5060", help="demo Asterisk SIP address")
    parser.add_argument("--hold", type=int, default=40, help="caller: seconds before hanging up")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="astreinte-phone-"))
    media = free_port(socket.SOCK_DGRAM) & ~1
    if args.role == "call":
        speech = work / "speech.ul"
        subprocess.run(
            f"espeak-ng -v fr -w {work}/s.wav 'Bonjour, ceci est un appel de démonstration.' "
            f"&& sox {work}/s.wav -r 8000 -c 1 -t ul {speech}",
            shell=True,
            check=True,
        )
        run = start_sipp(
            work,
            "caller",
            caller_scenario(
                number="+33199000001", name="Demo caller", hold_ms=args.hold * 1000, speech=speech
            ),
            local_port=free_port(socket.SOCK_DGRAM),
            media_port=media,
            remote=args.pbx,
            service=args.number,
        )
    else:
        if args.number not in DEMO_MOBILES:
            parser.error(f"demo mobiles are {', '.join(DEMO_MOBILES)}")
        run = start_sipp(
            work,
            "mobile",
            agent_scenario(args.role),
            local_port=DEMO_MOBILES[args.number],
            media_port=media,
            timeout_s=600,
        )
    print(f"{args.role} {args.number}: sipp running (log {run.log_path})", flush=True)
    code = run.wait(660)
    print(f"done, sipp exit code {code}" + ("" if code == 0 else f"\n{run.output()}"))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
