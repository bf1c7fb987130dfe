"""Be a phone in the demo: an agent's mobile (sipp UAS) or a caller (sipp UAC).

scripts/demo-phone.sh accept +33610000001    # Alice's mobile: answers, presses 1
scripts/demo-phone.sh busy +33610000001      # ... or busy / noanswer / silent / reject
scripts/demo-phone.sh call +33180000000      # call the on-call line as a new customer

A caller speaks in a loop and stays on the line until the service hangs up or
--hold seconds have passed: long enough, by default, to reach the voicemail
(about 47 s with no phone answering) and leave a message. Each call comes from a
new caller number unless --from is given: the service lets one number start at
most 5 cascades in 10 minutes (defaults.caller_rate_limit), after which that
caller goes straight to voicemail.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from astreinte_ari.devtools.localpbx import free_port
from tests.rig.sipp import agent_scenario, caller_scenario, start_sipp

DEMO_MOBILES = {"+33610000001": 5071, "+33610000002": 5072, "+33620000001": 5081}
# Announcement (~7 s) + two hops of 20 s + the greeting: a 40 s hold hung up
# before the voicemail; 75 s leaves a message of about 20 s.
DEFAULT_HOLD_S = 75


def _fresh_caller() -> str:
    # +33 1 99 00 xx xx: a French range reserved for fiction, never a real customer.
    return f"+3319900{random.randrange(10_000):04d}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("role", choices=["accept", "busy", "noanswer", "silent", "reject", "call"])
    parser.add_argument("number", help="the mobile to be, or the DID to call")
    sip_port = os.environ.get("ASTREINTE_DEMO_SIP_PORT", "5060")
    parser.add_argument(
        "--pbx",
        default=f"127.0.0.1:{sip_port}",
        help="demo Asterisk SIP address (default: 127.0.0.1:$ASTREINTE_DEMO_SIP_PORT or 5060)",
    )
    parser.add_argument(
        "--hold",
        type=int,
        default=DEFAULT_HOLD_S,
        help=f"caller: hang up after this many seconds if the line has not "
        f"(default {DEFAULT_HOLD_S}: reaches the voicemail)",
    )
    parser.add_argument(
        "--from",
        dest="caller",
        metavar="NUMBER",
        help="caller: the calling number (default: a new one each call, e.g. +33199001234)",
    )
    return parser


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="astreinte-phone-"))
    media = free_port(socket.SOCK_DGRAM) & ~1
    if args.role == "call":
        caller = args.caller or _fresh_caller()
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
                number=caller, name="Demo caller", hold_ms=args.hold * 1000, speech=speech
            ),
            local_port=free_port(socket.SOCK_DGRAM),
            media_port=media,
            remote=args.pbx,
            service=args.number,
            timeout_s=args.hold + 60,
        )
        print(f"calling {args.number} from {caller} (hanging up after {args.hold} s at most)")
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
    code = run.wait(max(660, args.hold + 120))
    print(f"done, sipp exit code {code}" + ("" if code == 0 else f"\n{run.output()}"))
    if args.role == "call":
        print("the call in the audit trail: .venv/bin/astreinte calls list -c config/demo.yaml")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
