"""Cluster core (pure): the leader election's decisions and lease, the node-lost
verdict and the events that close a lost node's call, the doctor's view, and
the `cluster:` section of the configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astreinte_ari.app.doctor_cluster import describe_nodes, system_name_problem
from astreinte_ari.callflow.audit_events import CallEnded, HopEnded, StateChanged
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.reconcile import OpenCall, OpenHop
from astreinte_ari.cluster.election import LockProbe, Role, decide, leading, lease_s
from astreinte_ari.cluster.node_lost import NodeRow, node_loss, settle_lost_call, was_waiting
from astreinte_ari.config.cluster import ClusterConfig, node_name
from astreinte_ari.config.loader import ConfigError
from tests.unit.test_hop_targets import CONFIG, _load

L, F = Role.LEADER, Role.FOLLOWER
T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("role", "probe", "expected"),
    [
        # the leader keeps leading while its lock session answers and holds the lock
        (L, LockProbe(held=True), (L, False, False)),
        (L, LockProbe(held=False), (F, True, False)),  # connection dead: step down
        (F, LockProbe(acquired=True), (L, True, False)),
        (F, LockProbe(), (F, False, False)),  # held by someone, nobody claims: wait
        (F, LockProbe(holder_age_s=2.0), (F, False, False)),  # a live leader
        (F, LockProbe(holder_age_s=10.0), (F, False, False)),  # at the limit: not yet
        (F, LockProbe(holder_age_s=10.5), (F, False, True)),  # frozen: end its session
        (F, LockProbe(holder_age_s=60, holder_is_me=True), (F, False, False)),  # own row
        # acquisition wins over whatever the rows say
        (F, LockProbe(acquired=True, holder_age_s=60), (L, True, False)),
    ],
)
def test_election_decisions(
    role: Role, probe: LockProbe, expected: tuple[Role, bool, bool]
) -> None:
    decision = decide(role, probe, lost_after_s=10.0)
    assert (decision.role, decision.changed, decision.terminate_holder) == expected


@pytest.mark.parametrize(
    ("role", "confirmed_at", "now", "runs"),
    [
        (L, 100.0, 101.0, True),
        (L, 100.0, 103.0, True),  # lease 3 s with the defaults
        (L, 100.0, 103.1, False),  # thawed after a freeze: nothing runs until confirmed
        (L, None, 100.0, False),
        (F, 100.0, 100.0, False),
    ],
)
def test_the_lease_stops_a_thawed_leader(
    role: Role, confirmed_at: float | None, now: float, runs: bool
) -> None:
    lease = lease_s(1.0, 10.0)
    assert lease == 3.0
    assert leading(role, confirmed_at, now, lease) is runs


@pytest.mark.parametrize(
    ("acquired_at", "now", "runs"),
    [
        (100.0, 100.0, False),  # the lock just taken: the old holder may still run
        (100.0, 102.9, False),
        (100.0, 103.0, True),  # a lease later: whatever it held, the old lease is over
        (None, 103.0, True),
    ],
)
def test_a_new_leader_waits_out_the_previous_leaders_lease(
    acquired_at: float | None, now: float, runs: bool
) -> None:
    lease = lease_s(1.0, 10.0)
    assert leading(L, now - 0.5, now, lease, acquired_at) is runs


def test_lease_is_always_shorter_than_the_loss_limit() -> None:
    for lost_after in (6.0, 10.0, 30.0, 300.0):
        assert lease_s(1.0, lost_after) < lost_after


def _row(last_seen_ago: float, ari: bool = True, lost_ago: float | None = None) -> NodeRow:
    return NodeRow(
        node="pbx-b",
        started_at=T0 - timedelta(hours=1),
        last_seen=T0 - timedelta(seconds=last_seen_ago),
        ari_connected=ari,
        ari_connected_since=None,
        ari_lost_at=None if lost_ago is None else T0 - timedelta(seconds=lost_ago),
        is_leader=False,
    )


@pytest.mark.parametrize(
    ("row", "lost_since_ago"),
    [
        (_row(1), None),  # heartbeating with its Asterisk
        (_row(9.9), None),  # a late heartbeat or two: nothing happens
        (_row(10.1), 10.1),  # silent: lost since its last heartbeat
        (_row(1, ari=False, lost_ago=4), None),  # reconnecting its Asterisk: wait
        (_row(1, ari=False, lost_ago=12), 12),  # its Asterisk is gone
        (_row(30, ari=False, lost_ago=40), 30),  # silent wins: last seen alive
        (_row(1, ari=False), 3600),  # never connected since its start
    ],
)
def test_node_loss(row: NodeRow, lost_since_ago: float | None) -> None:
    loss = node_loss(row, T0, 10.0)
    if lost_since_ago is None:
        assert loss is None
    else:
        assert loss is not None and loss.node == "pbx-b"
        assert loss.since == T0 - timedelta(seconds=lost_since_ago)


def _open_call(answered: bool) -> OpenCall:
    hops = (OpenHop("h1", 1, "alice", T0 - timedelta(seconds=50) if answered else None),)
    return OpenCall(
        call_id="c1",
        channel_id="chan-1",
        started_at=T0 - timedelta(seconds=60),
        last_seq=3,
        last_state=CallState.BRIDGED if answered else CallState.DIALING,
        last_event_at=T0 - timedelta(seconds=50),
        answered_at=T0 - timedelta(seconds=45) if answered else None,
        accepted_hop_id="h1" if answered else None,
        accepted_person_id="alice" if answered else None,
        open_hops=hops,
    )


def test_a_waiting_caller_of_a_lost_node_is_closed_node_lost_and_missed() -> None:
    call = _open_call(answered=False)
    loss = node_loss(_row(12), T0, 10.0)
    assert loss is not None
    events = settle_lost_call(call, loss)
    hop, state, ended = events
    assert isinstance(hop, HopEnded) and hop.outcome is HopOutcome.CANCELLED
    assert isinstance(state, StateChanged)
    assert (state.seq, state.from_state, state.to_state) == (4, CallState.DIALING, CallState.ENDED)
    assert isinstance(ended, CallEnded) and ended.outcome is CallOutcome.NODE_LOST
    assert ended.at == loss.since == T0 - timedelta(seconds=12)
    assert "waiting at dialing" in ended.detail and ended.talk_seconds is None
    assert was_waiting(call)


def test_a_bridged_call_of_a_lost_node_keeps_its_agent_and_talk_time() -> None:
    call = _open_call(answered=True)
    loss = node_loss(_row(12), T0, 10.0)
    assert loss is not None
    hop, _, ended = settle_lost_call(call, loss)
    assert isinstance(hop, HopEnded) and hop.outcome is HopOutcome.ACCEPTED
    assert isinstance(ended, CallEnded) and ended.talk_seconds == 33.0
    assert not was_waiting(call)


def test_a_call_started_after_the_last_heartbeat_ends_no_earlier_than_it_started() -> None:
    call = _open_call(answered=False)
    loss = node_loss(_row(120), T0, 10.0)  # silent for 2 min, the call is 1 min old
    assert loss is not None
    ended = settle_lost_call(call, loss)[-1]
    assert ended.at == call.started_at


def test_doctor_view() -> None:
    rows = [
        NodeRow("pbx-a", T0, T0 - timedelta(seconds=1), True, T0, None, True),
        NodeRow("pbx-b", T0, T0 - timedelta(seconds=30), True, T0, None, False),
    ]
    ok, detail, fix = describe_nodes("pbx-a", rows, T0, 10.0)
    assert not ok
    assert detail.startswith("node pbx-a: leader; 2 node(s): pbx-a seen 1s ago (ARI up, leader)")
    assert "pbx-b seen 30s ago (ARI up, LOST)" in detail and "pbx-b" in fix
    ok, detail, _ = describe_nodes("pbx-b", rows[:1], T0, 10.0)
    assert ok and detail.startswith("node pbx-b: not running (no heartbeat")
    # Its own stopped service is no failure (doctor often runs while it is stopped).
    ok, detail, _ = describe_nodes("pbx-b", rows, T0, 10.0)
    assert ok and detail.startswith("node pbx-b: not running (last heartbeat 30s ago)")


# -- configuration ----------------------------------------------------------------


def test_cluster_section_defaults_and_node_name(tmp_path: Path) -> None:
    config = _load(tmp_path)
    assert config.cluster == ClusterConfig()
    assert (config.cluster.heartbeat_seconds, config.cluster.node_lost_after_seconds) == (2, 10)
    named = ClusterConfig(node="pbx-a")
    assert node_name(named, {}) == "pbx-a"
    assert node_name(named, {"ASTREINTE_NODE_NAME": "pbx-z"}) == "pbx-z"  # env wins
    assert 1 <= len(node_name(ClusterConfig(), {})) <= 64  # the host name
    with pytest.raises(ValueError, match="ASTREINTE_NODE_NAME"):
        node_name(named, {"ASTREINTE_NODE_NAME": "bad name;"})


def test_cluster_section_is_read(tmp_path: Path) -> None:
    text = (
        CONFIG + "cluster: {node: pbx-a.paris, heartbeat_seconds: 1, node_lost_after_seconds: 5}\n"
    )
    config = _load(tmp_path, text)
    assert config.cluster == ClusterConfig(
        node="pbx-a.paris", heartbeat_seconds=1, node_lost_after_seconds=5
    )


@pytest.mark.parametrize(
    ("section", "line", "words"),
    [
        ("cluster:\n  node: 'pbx a'\n", 2, "cluster.node: 'pbx a' is not a node name"),
        ("cluster:\n  heartbeat_seconds: 0\n", 2, "cluster.heartbeat_seconds"),
        ("cluster:\n  heartbeat_seconds: 5\n  node_lost_after_seconds: 10\n", 1, "3 x heartbeat"),
        ("cluster:\n  nodes: pbx-a\n", 2, "did you mean 'node'"),
    ],
)
def test_bad_cluster_section_is_refused_with_its_line(
    tmp_path: Path, section: str, line: int, words: str
) -> None:
    line += len(CONFIG.splitlines())  # `line`: 1 is "cluster:", right after CONFIG
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, CONFIG + section, "bad.yaml")
    text = str(info.value)
    assert f"bad.yaml:{line}:" in text and words in text, text


@pytest.mark.parametrize(
    ("system_name", "shared", "problem"),
    [
        ("pbx-a", [], None),
        ("", [], "Asterisk has no systemname"),
        ("astreinte-pbx", [], "the astreinte- prefix is the service's own"),
        ("pbx", ["pbx-b"], "systemname 'pbx' is also used by node(s) pbx-b"),
    ],
)
def test_doctor_wants_a_distinct_asterisk_systemname_per_node(
    system_name: str, shared: list[str], problem: str | None
) -> None:
    found = system_name_problem("pbx-a", system_name, shared)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found[0]
        assert found[1].startswith("set systemname = pbx-a in asterisk.conf")


def test_doctor_finds_another_nodes_calls_under_this_systemname(tmp_path: Path) -> None:
    from sqlalchemy import insert

    from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
    from astreinte_ari.adapters.store.models import calls_table
    from astreinte_ari.app.doctor_cluster import _nodes_sharing

    url = f"sqlite:///{tmp_path}/calls.db"
    upgrade(url)
    engine = create_db_engine(url)
    row = dict(did="+33180000001", line_name="L", period="night", caller_number="+3361",
               caller_name="", started_at=T0)  # fmt: skip
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(calls_table),
                [
                    {**row, "id": "c1", "channel_id": "pbx-1764540000.1", "node": "pbx-b"},
                    {**row, "id": "c2", "channel_id": "pbx-1764540000.2", "node": "pbx-a"},
                    {**row, "id": "c3", "channel_id": "pbx-a-1764540000.3", "node": "pbx-c"},
                    {**row, "id": "c4", "channel_id": "pbxZx-1764540000.4", "node": "pbx-d"},
                ],
            )
        # pbx-a's own calls do not count.
        assert _nodes_sharing(engine, "pbx-a", "pbx") == ["pbx-b", "pbx-c"]
        assert _nodes_sharing(engine, "pbx-a", "pbx-a") == ["pbx-c"]
        assert _nodes_sharing(engine, "pbx-a", "other") == []
        assert _nodes_sharing(engine, "pbx-a", "pbx_x") == []  # "_" is no LIKE wildcard here
    finally:
        engine.dispose()
