"""Real calls through an installed astreinte-ari (a wheel's venv, or the .deb in a root).

Both package tests run the same two calls with the e2e rig's phones (sipp):
with the installed service up, the agent presses 1 and is bridged; with it
down, the dialplan fallback runs the installed AGI, which rings the agent, who
presses 1 too. The trail is then read from the installed service's database.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import CallDetail, get_call, list_calls
from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port
from tests.e2e.rig import LINE_FULL, P1, P2, SUP, E2ERig, finish, make_speech, now_utc

MOBILES = (P1, P2, SUP)


def mobile_ports() -> dict[str, int]:
    return {number: free_port(socket.SOCK_DGRAM) for number in MOBILES}


@contextmanager
def rig_on(pbx: LocalAsterisk, work: Path, ports: dict[str, int]) -> Iterator[E2ERig]:
    """The e2e rig's phones around an already configured (not started) PBX."""
    pbx.start()
    rig = E2ERig(work, pbx, ports, make_speech(work / "speech.ul"))
    try:
        yield rig
    finally:
        rig.cleanup()
        pbx.stop()


def wait_until_ready(log: Path, proc: subprocess.Popen[bytes], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "astreinte ready" in text:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"installed service not ready:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def last_call(db_url: str, did: str, since: object, timeout: float = 30.0) -> CallDetail:
    """The call to `did` since `since`, once it has ended in the trail."""
    engine = create_db_engine(db_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = list_calls(engine, since=since, did=did, limit=5)  # type: ignore[arg-type]
            if calls and calls[0].ended_at is not None:
                detail = get_call(engine, calls[0].id)
                assert detail is not None
                return detail
            time.sleep(0.3)
    finally:
        engine.dispose()
    raise AssertionError(f"no ended call to {did} in {db_url}")


def accepted_call_with_service_up(rig: E2ERig, db_url: str) -> CallDetail:
    """The installed service takes the call; the on-call agent presses 1 and is bridged."""
    since = now_utc()
    agent = rig.phone(P1, rig.agent("accept", dtmf="1", dtmf_after_ms=1200))
    # The installed package's own announcement (up to 7.2 s on a holiday), a ring and
    # the key (2.5 s) come first: 9 s left the bridge 0.2 s, and a loaded run missed it.
    caller = rig.call(LINE_FULL, hold_ms=16000, caller="+33199000001")
    bridged = rig.wait_for_bridge("astreinte-agent-")
    assert any(not c.startswith("astreinte-") for c in bridged), bridged
    finish(caller, agent)
    call = last_call(db_url, LINE_FULL, since)
    assert call.outcome == "accepted", call.outcome_detail
    assert [(h.person_id, h.outcome, h.dtmf) for h in call.hops] == [("p1", "accepted", "1")]
    return call


def accepted_call_through_fallback(
    rig: E2ERig, spool: Path, import_spool: Callable[[], Sequence[str]], db_url: str
) -> CallDetail:
    """The service is down: the installed AGI rings the agent, who presses 1; the
    installed `astreinte fallback import` then puts the call in the trail."""
    since = now_utc()
    agent = rig.phone(P1, rig.agent("accept", dtmf="1", dtmf_after_ms=1200, talk_ms=2500))
    caller = rig.call(LINE_FULL, hold_ms=8000, caller="+33199000002")
    finish(caller, agent)
    deadline = time.monotonic() + 10
    while not list(spool.glob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)
    spooled = list(spool.glob("*.jsonl"))
    assert spooled, f"the AGI spooled nothing in {spool}:\n{rig.pbx.log_tail()}"
    # The AGI writes its end record after the hang-up (later on a loaded machine):
    # until then the import leaves the unfinished call in the spool.
    out = "\n".join(import_spool())
    while "1 fallback call(s) imported" not in out and time.monotonic() < deadline + 10:
        time.sleep(0.2)
        out = "\n".join(import_spool())
    assert "1 fallback call(s) imported" in out, out
    call = last_call(db_url, LINE_FULL, since)
    assert call.outcome == "accepted", call.outcome_detail
    assert [(h.person_id, h.outcome, h.dtmf) for h in call.hops] == [("p1", "accepted", "1")]
    assert call.transitions[0].reason.startswith("service not connected"), call.transitions[0]
    return call
