"""Two real `astreinte run` services on one PostgreSQL database elect one leader;
a SIGSTOPped leader is replaced once its heartbeat is node_lost_after_seconds
old and steps down when it thaws; a killed leader is replaced within a second
or two. Each service says where it stands in /readyz's `cluster`.

(Both are attached to the one test Asterisk, under two ARI application names:
the calls themselves are not the point here; the Kamailio rig runs one
Asterisk per node.)"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.devtools.localpbx import free_port
from tests.e2e.rig import E2ERig, ServiceProcess, e2e_config
from tests.rig.polling import wait_until
from tests.rig.postgres import create_database

pytestmark = pytest.mark.postgres

CLUSTER = "cluster: {heartbeat_seconds: 0.5, node_lost_after_seconds: 3}"


def cluster_view(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            body = resp.read()
    except urllib.error.HTTPError as exc:  # 503: not ready, the body still says it all
        body = exc.read()
    except OSError:
        return None  # frozen or gone
    view = json.loads(body).get("cluster")
    return view if isinstance(view, dict) else None


def role(port: int) -> str | None:
    view = cluster_view(port)
    return None if view is None else str(view["role"])


@pytest.fixture
def two_nodes(
    e2e_rig: E2ERig, postgres_url: str, tmp_path: Path
) -> Iterator[dict[str, tuple[ServiceProcess, int]]]:
    db_url = create_database(postgres_url, f"cl_{tmp_path.name[-10:]}".replace("-", "_"))
    nodes: dict[str, tuple[ServiceProcess, int]] = {}
    try:
        for name, app in (("pbx-a", "astreinte"), ("pbx-b", "astreinte-b")):
            work = tmp_path / name
            work.mkdir()
            port = free_port()
            text = e2e_config(
                ari_url=e2e_rig.pbx.ari_url,
                db_url=db_url,
                recordings=work / "recordings",
                metrics_port=port,
                spool=work / "spool",
                cel_file=e2e_rig.pbx.cel_file,
                sip_port=e2e_rig.pbx.sip_port,
                extra_yaml=CLUSTER,
            ).replace("app: astreinte}", f"app: {app}}}")
            (work / "astreinte.yaml").write_text(text)
            proc = ServiceProcess(
                work / "astreinte.yaml",
                db_url,
                work / "recordings",
                work / "service.log",
                env={"ASTREINTE_NODE_NAME": name},
            )
            proc.start(migrate=name == "pbx-a")
            nodes[name] = (proc, port)
        yield nodes
    finally:
        for proc, _ in nodes.values():
            if proc.process is not None:
                proc.signal(signal.SIGCONT)
            proc.stop()


def test_one_leader_a_frozen_one_is_replaced_and_a_killed_one_too(
    two_nodes: dict[str, tuple[ServiceProcess, int]],
) -> None:
    ports = {name: port for name, (_, port) in two_nodes.items()}

    def leaders() -> list[str]:
        return [name for name, port in ports.items() if role(port) == "leader"]

    first = wait_until(
        lambda: leaders() if len(leaders()) == 1 else None, timeout=15, what="leader"
    )
    leader, other = first[0], next(n for n in ports if n != first[0])

    def both_connected() -> dict[str, object] | None:
        view = cluster_view(ports[other])
        nodes = view["nodes"] if view else []
        ok = len(nodes) == 2 and all(n["ari_connected"] for n in nodes)  # type: ignore[arg-type, index]
        return view if ok else None

    view = wait_until(both_connected, timeout=10, what="both nodes, ARI connected, in the view")
    assert view["node"] == other and view["role"] == "follower"
    assert {n["node"] for n in view["nodes"]} == {"pbx-a", "pbx-b"}  # type: ignore[union-attr]
    assert [n["node"] for n in view["nodes"] if n["leader"]] == [leader]  # type: ignore[union-attr]

    # Frozen (SIGSTOP): it keeps its lock session; its heartbeat goes stale.
    frozen, _ = two_nodes[leader]
    frozen.signal(signal.SIGSTOP)
    stopped = time.monotonic()
    wait_until(lambda: role(ports[other]) == "leader", timeout=15, what="takeover from frozen")
    took_frozen = time.monotonic() - stopped
    assert 2.5 <= took_frozen <= 8.0, took_frozen
    frozen.signal(signal.SIGCONT)
    wait_until(lambda: role(ports[leader]) == "follower", timeout=10, what="thawed one following")
    log = frozen.log_tail(400)
    assert f"leadership lost on node {leader}" in log, log
    assert leaders() == [other]

    # Killed (SIGKILL): the server ends its session at once, the lock is free.
    killed, _ = two_nodes[other]
    killed.signal(signal.SIGKILL)
    died = time.monotonic()
    wait_until(lambda: role(ports[leader]) == "leader", timeout=10, what="takeover from killed")
    took_killed = time.monotonic() - died
    assert took_killed <= 3.0, took_killed
    print(f"\ntakeover: frozen leader {took_frozen:.2f} s, killed leader {took_killed:.2f} s")
