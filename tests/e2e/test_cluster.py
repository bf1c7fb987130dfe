"""No single point of failure: Kamailio in front of two nodes (Asterisk + service), one
shared PostgreSQL, on one machine with network namespaces (tests/rig/cluster.py).

Needs root and `ip netns`: skipped, loudly, only without them (CI runs as root).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime

import pytest
from sqlalchemy import select

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.models import calls_table
from astreinte_ari.adapters.store.queries import CallSummary, list_calls
from tests.e2e.rig import LINE_SHORT, P1, SUP, make_speech, sipp_available
from tests.rig.cluster import Cluster, running_cluster
from tests.rig.crowd import CallerCrowd, CallPlan, numbered
from tests.rig.kamailio import kamailio_missing, wait_for_event
from tests.rig.netns import PREFIX, netns_unavailable, remove_stale
from tests.rig.polling import wait_until
from tests.rig.postgres import PostgresHandle, stoppable_postgres
from tests.rig.trail_check import same_number
from tests.rig.wire import CallerLeg

_NO_NETNS = netns_unavailable()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.skipif(
        _NO_NETNS is not None,
        reason=f"!!! CLUSTER TESTS NOT RUN: {_NO_NETNS} !!!",
    ),
]


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresHandle]:
    with stoppable_postgres(tmp_path_factory.mktemp("cluster-pg")) as handle:
        yield handle


@pytest.fixture(scope="module")
def whole_cluster(
    pg: PostgresHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    missing = kamailio_missing()
    if missing or not sipp_available():
        pytest.fail(missing or "sipp/asterisk/espeak-ng/sox missing: scripts/install-test-deps.sh")
    work = tmp_path_factory.mktemp("cluster")
    with running_cluster(work, pg, make_speech(work / "speech.ul")) as rig:
        yield rig


@pytest.fixture
def cluster(whole_cluster: Cluster) -> Iterator[Cluster]:
    """The module's cluster with every node up and in rotation (a test that killed a
    part and failed before restarting it leaves the next test a whole cluster)."""
    whole_cluster.heal()
    yield whole_cluster
    whole_cluster.stop_runs()


def _trail(cluster: Cluster, since: datetime) -> list[CallSummary]:
    engine = create_db_engine(cluster.db_url)
    try:
        return list_calls(engine, since=since, limit=None)
    finally:
        engine.dispose()


def _nodes_on_record(cluster: Cluster, since: datetime) -> dict[str, str | None]:
    """Caller number -> `calls.node`: the node whose Asterisk carried the call."""
    engine = create_db_engine(cluster.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(calls_table.c.caller_number, calls_table.c.node).where(
                    calls_table.c.started_at >= since
                )
            ).all()
    finally:
        engine.dispose()
    return {number: node for number, node in rows}


def _rows_of(rows: Sequence[CallSummary], number: str) -> list[CallSummary]:
    return [row for row in rows if same_number(number, row.caller_number)]


def _each_call_once(
    cluster: Cluster, since: datetime, legs: Sequence[CallerLeg], *, ended: bool, timeout: float
) -> list[CallSummary]:
    """Wait until the shared trail holds exactly one row per call sipp placed (ended,
    if `ended`); fail naming the calls that are missing or doubled."""

    def problems() -> list[str]:
        rows = _trail(cluster, since)
        out = []
        for leg in legs:
            mine = _rows_of(rows, leg.number)
            if len(mine) != 1:
                out.append(f"{leg.number}: {len(mine)} rows ({leg.describe()})")
            elif ended and mine[0].ended_at is None:
                out.append(f"{leg.number}: still open ({leg.describe()})")
        return out

    try:
        wait_until(lambda: not problems(), timeout=timeout, what="one trail row per call")
    except AssertionError:
        every = "\n".join(
            f"  {r.caller_number} {r.started_at} {r.outcome} {r.id[:8]}"
            for r in _trail(cluster, since)
        )
        raise AssertionError(
            "trail vs wire:\n" + "\n".join(problems()) + f"\nthe trail since {since}:\n{every}"
        ) from None
    return _trail(cluster, since)


def _nothing_in_flight(cluster: Cluster, crowd: CallerCrowd, since: datetime, node: str) -> bool:
    """No INVITE waits for its answer, and every call `node`'s Asterisk answered is on
    record. An Asterisk killed within ~50 ms of answering, before its service read the
    StasisStart, takes the call with it: only Kamailio saw it (a known gap, see
    docs/cluster.md); this test measures the calls placed after the kill instead."""
    legs = crowd.wire()
    if any(leg.final_status is None for leg in legs):
        return False
    answered_by = cluster.answered_by(crowd)
    on_record = _nodes_on_record(cluster, since)
    unread = [
        leg
        for leg in legs
        if answered_by.get(leg.call_id) == node
        and not any(same_number(leg.number, number) for number in on_record)
    ]
    return not unread and len(crowd.wire()) == len(legs)


def _plans(tag: str, count: int, talk_ms: int) -> list[CallPlan]:
    return [
        CallPlan(numbered(i, prefix=f"+33199{tag}"), hang_up_after_answer_ms=talk_ms)
        for i in range(count)
    ]


def test_calls_spread_and_a_dead_asterisk_loses_no_new_call(cluster: Cluster) -> None:
    """Round-robin over both nodes; kill -9 of Asterisk A at 2 calls/s: every call placed
    after the kill is answered (by B), each call is in the shared trail exactly once,
    A rejoins the rotation once restarted."""
    began = time.monotonic()
    since = datetime.now().astimezone()
    a = cluster.nodes["a"]
    phone = cluster.agent_phone(P1, "accept")
    cluster.agent_phone(SUP, "accept")
    crowd = cluster.callers(LINE_SHORT, _plans("1", 20, talk_ms=2500), rate=2.0)

    def spread() -> bool:
        nodes = list(cluster.answered_by(crowd).values())
        return nodes.count("a") >= 2 and nodes.count("b") >= 2

    wait_until(spread, timeout=30, what="calls answered by both nodes")
    wait_until(
        lambda: _nothing_in_flight(cluster, crowd, since, node="a"),
        timeout=20,
        every=0.02,
        what="a moment with no call between Asterisk A's answer and its service",
    )
    killed_at = time.time()
    a.kill_asterisk()
    down = wait_for_event(cluster.kamailio, "down", a.sip_uri, after=killed_at, timeout=10)
    detection = down.at - killed_at

    crowd.wait(90)
    legs = crowd.wire()
    answered_by = cluster.answered_by(crowd)
    after_kill = [leg for leg in legs if leg.invite_at.timestamp() > killed_at]
    failed = [leg.describe() for leg in after_kill if not leg.answered]
    lost = [
        leg
        for leg in legs
        if answered_by.get(leg.call_id) == "a"
        and leg.final_at is not None
        and leg.final_at.timestamp() <= killed_at
        and (leg.bye_at is None or leg.bye_at.timestamp() > killed_at)
    ]
    print(
        f"\nCLUSTER kill -9 asterisk: detection {detection:.2f} s; placed {len(legs)}, "
        f"after the kill {len(after_kill)}, failed {len(failed)}; connected on the dead "
        f"node {len(lost)}; per node {sorted(answered_by.values()).count('a')}/"
        f"{sorted(answered_by.values()).count('b')}"
    )
    assert len(legs) == 20
    assert after_kill, "the kill came after the last call: nothing measured"
    assert not failed, "calls placed after the kill failed:\n" + "\n".join(failed)
    # Once A is out of rotation, only B answers.
    late = [leg for leg in after_kill if leg.invite_at.timestamp() > down.at]
    assert {answered_by.get(leg.call_id) for leg in late} <= {"b"}
    assert detection < 5, f"node down detected only {detection:.2f} s after the kill"
    # A back: Kamailio puts it in rotation again and its service reconnects to ARI.
    restarted_at = time.time()
    a.pbx.start()
    up = wait_for_event(cluster.kamailio, "up", a.sip_uri, after=restarted_at, timeout=15)
    print(f"CLUSTER asterisk A back in rotation {up.at - restarted_at:.2f} s after its restart")
    wait_until(a.app_registered, timeout=30, what="service A connected to Asterisk A again")
    # Every call on record exactly once, and closed: the dead node's by its service's
    # reconciliation once its Asterisk is back (or by the leader, node_lost); each
    # with the node that carried it.
    _each_call_once(cluster, since, legs, ended=True, timeout=40)
    on_record = _nodes_on_record(cluster, since)
    wrong_node = [
        f"{leg.number}: answered by {answered_by.get(leg.call_id)}, on record {node}"
        for leg in legs
        for number, node in on_record.items()
        if same_number(leg.number, number) and node != f"pbx-{answered_by.get(leg.call_id)}"
    ]
    assert not wrong_node, "\n".join(wrong_node)
    again = cluster.callers(LINE_SHORT, _plans("2", 4, talk_ms=1000), rate=4.0)
    again.finish(60)
    assert sorted(cluster.answered_by(again).values()) == ["a", "a", "b", "b"]
    phone.stop()
    print(f"CLUSTER test time {time.monotonic() - began:.1f} s")


def test_a_dead_service_leaves_its_calls_to_the_dialplan_fallback(cluster: Cluster) -> None:
    """kill -9 of service A, its Asterisk alive: A still takes its share of the calls and
    its dialplan fallback connects them to the agent; once A's service is back, the spool
    import puts them in the shared trail: every call on record exactly once, none lost."""
    began = time.monotonic()
    since = datetime.now().astimezone()
    a = cluster.nodes["a"]
    cluster.agent_phone(P1, "accept")
    cluster.agent_phone(SUP, "accept")
    a.service.signal(signal.SIGKILL)  # returns once it is dead: its ARI socket is closed
    crowd = cluster.callers(LINE_SHORT, _plans("3", 6, talk_ms=1500), rate=2.0)
    crowd.wait(60)
    legs = crowd.wire()
    answered_by = cluster.answered_by(crowd)
    unanswered = [leg.describe() for leg in legs if not leg.answered]
    assert len(legs) == 6
    assert not unanswered, "calls not answered:\n" + "\n".join(unanswered)
    assert sorted(answered_by.values()) == ["a"] * 3 + ["b"] * 3, answered_by
    a.service.start(timeout=40, migrate=False)
    rows = _each_call_once(cluster, since, legs, ended=True, timeout=40)
    on_a = [leg for leg in legs if answered_by[leg.call_id] == "a"]
    for leg in on_a:
        (row,) = _rows_of(rows, leg.number)
        assert row.outcome == "accepted", (row.outcome, row.outcome_detail)
    print(
        f"\nCLUSTER kill -9 service: {len(on_a)} of {len(legs)} calls taken by A's dialplan "
        f"fallback, all on record after its restart; test time {time.monotonic() - began:.1f} s"
    )


def test_a_whole_node_dies_its_calls_close_node_lost_and_leadership_moves(
    cluster: Cluster,
) -> None:
    """kill -9 of the leader's service and Asterisk with calls connected there: the other
    node takes the leadership (the lock's session died) and closes the dead node's calls
    as node_lost (docs/cluster.md); its own calls go on untouched."""
    since = datetime.now().astimezone()
    leader = wait_until(cluster.leader, timeout=20, what="a leader")
    dead = cluster.nodes[leader]
    alive = next(node for node in cluster.nodes.values() if node is not dead)
    cluster.agent_phone(P1, "accept")
    cluster.agent_phone(SUP, "accept")
    crowd = cluster.callers(LINE_SHORT, _plans("4", 4, talk_ms=9000), rate=4.0)
    wait_until(lambda: len(cluster.answered_by(crowd)) == 4, timeout=20, what="4 calls answered")
    answered_by = cluster.answered_by(crowd)
    # Connected = on record: Asterisk answers before the service has seen the call.
    placed = crowd.wire()
    wait_until(
        lambda: all(_rows_of(_trail(cluster, since), leg.number) for leg in placed),
        timeout=20,
        what="the 4 calls on record",
    )
    killed_at = time.time()
    dead.service.signal(signal.SIGKILL)
    dead.kill_asterisk()
    wait_until(lambda: cluster.leader() == alive.name, timeout=20, what="the other node leading")
    takeover = time.time() - killed_at
    wait_until(
        lambda: alive.readyz().get("cluster", {}).get("role") == "leader",
        timeout=20,
        what=f"/readyz of {alive.name} saying leader",
    )
    crowd.wait(60)
    legs = crowd.wire()
    on_dead = [leg for leg in legs if answered_by[leg.call_id] == dead.name]
    assert len(on_dead) == 2, answered_by

    def closed_node_lost() -> bool:
        rows = _trail(cluster, since)
        return all(
            [r.outcome for r in _rows_of(rows, leg.number)] == ["node_lost"] for leg in on_dead
        )

    wait_until(closed_node_lost, timeout=40, what="the dead node's calls closed node_lost")
    closed_after = time.time() - killed_at
    rows = _each_call_once(cluster, since, legs, ended=True, timeout=30)
    others = [r for leg in legs if leg not in on_dead for r in _rows_of(rows, leg.number)]
    assert len(others) == 2 and all(r.outcome != "node_lost" for r in others), others
    print(
        f"\nCLUSTER whole node {dead.name} killed (it led): {alive.name} leads after "
        f"{takeover:.2f} s; its {len(on_dead)} connected calls closed node_lost after "
        f"{closed_after:.1f} s"
    )


def test_namespaces_of_a_dead_run_are_removed_and_a_live_runs_kept() -> None:
    """remove_stale(): our prefix with a dead owner pid goes (with what runs inside);
    a live owner's stays."""
    dead_pid = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout
    dead = f"{PREFIX}-{dead_pid.strip()}-{uuid.uuid4().hex[:6]}-x"
    live = f"{PREFIX}-{os.getpid()}-{uuid.uuid4().hex[:6]}-x"
    for name in (dead, live):
        subprocess.run(["ip", "netns", "add", name], check=True)
    sleeper = subprocess.Popen(["ip", "netns", "exec", dead, "sleep", "300"])
    try:
        wait_until(
            lambda: (
                str(sleeper.pid)
                in subprocess.run(
                    ["ip", "netns", "pids", dead], capture_output=True, text=True
                ).stdout.split()
            ),
            timeout=10,
            what="a process inside the stale namespace",
        )
        removed = remove_stale()
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert dead in removed and dead not in listing
        assert live not in removed and live in listing
        assert sleeper.wait(10) == -signal.SIGKILL
    finally:
        sleeper.kill()
        for name in (dead, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
