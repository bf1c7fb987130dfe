"""`astreinte test-call LINE`: run a line's test call now, through the running service.

The service owns the ARI application (one websocket per app name: a second client
would take it over), so this command does not call Asterisk itself: it asks the
service over its local HTTP endpoint (`metrics.listen`) with a token derived from
the ARI password, and prints the result the service reports.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from astreinte_ari.cli.context import OPERATING, CliContext, failure, usage_error

MARGIN_S = 20  # beyond the line's own test timeout: the service's settling and HTTP


def register(sub: Any) -> None:
    p = sub.add_parser(
        "test-call",
        help="run a line's test call now (through the running service; rings no one)",
    )
    p.add_argument("line", help="the line's number (its key under lines:)")
    p.add_argument("-c", "--config", help="configuration file (default: $ASTREINTE_CONFIG)")
    p.set_defaults(func=cmd_test_call)


def cmd_test_call(args: argparse.Namespace, ctx: CliContext) -> int:
    from astreinte_ari.app.selftest_edges import trigger_token

    config = ctx.config(OPERATING)
    line = config.lines.get(args.line)
    if line is None:
        raise usage_error(f"no line {args.line!r} (lines: {', '.join(config.lines)})")
    if line.test_call is None:
        raise usage_error(f"line {args.line} has no test_call: in {config.source_path}")
    if config.metrics is None:
        raise usage_error(
            "the service's HTTP endpoint is off: set metrics: {listen: 127.0.0.1:9464} "
            "(test calls on demand go through the running service)"
        )
    host = config.metrics.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    host = f"[{host}]" if ":" in host else host
    request = urllib.request.Request(
        f"http://{host}:{config.metrics.port}/test-call/{args.line}",
        method="POST",
        headers={"Authorization": f"Bearer {trigger_token(config.ari_password())}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=line.test_call.timeout + MARGIN_S) as reply:
            result = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")[:300]
        raise failure(f"the service refused the test call (HTTP {exc.code}): {text}") from None
    except (urllib.error.URLError, OSError) as exc:
        where = f"{host}:{config.metrics.port}"
        raise failure(f"the service does not answer on {where}: {exc}") from None
    verdict = "passed" if result.get("passed") else "FAILED"
    print(f"test call on {result.get('line')} ({args.line}) {verdict}: {result.get('detail')}")
    print(f"  routing decision: {result.get('decision')}")
    if result.get("call_id"):
        print(f"  trail: astreinte calls show {str(result['call_id'])[:8]}")
    return 0 if result.get("passed") else 1
