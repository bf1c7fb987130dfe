"""Two nodes behind Kamailio on one machine: the "no single point of failure" rig.

    root namespace (bridge .1): test process, PostgreSQL (unix socket), sipp callers
    and agent phones
    ├── <tag>-kam  (.10): Kamailio, packaging/cluster/kamailio.cfg, dispatcher set 1
    ├── <tag>-a    (.11): Asterisk A (the project's dialplan) + `astreinte run` (node a)
    └── <tag>-b    (.12): Asterisk B + `astreinte run` (node b)

Each service talks to its own Asterisk's ARI and they share one PostgreSQL
database, reached through its unix socket (a path: the same from every namespace).
Callers send to Kamailio; each Asterisk identifies Kamailio's address as the
caller endpoint and dials the agent phones on the bridge's root address.
"""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port
from tests.e2e.rig import ARI_PASSWORD, P1, P2, SUP, ServiceProcess, e2e_config
from tests.rig.crowd import CallerCrowd, CallPlan, start_callers
from tests.rig.kamailio import Kamailio
from tests.rig.netns import Host, Lan, private_lan
from tests.rig.phones import AgentPhone, agent_phone_scenario, start_agent_phone
from tests.rig.polling import wait_until
from tests.rig.postgres import PostgresHandle, create_database
from tests.rig.sipp import SippRun
from tests.rig.wire import parse_trace, trace_files

NODE_NAMES = ("a", "b")  # services' cluster.node: pbx-a, pbx-b (as their Asterisk systemname)
_LEADER_SQL = """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = 1634956402"""
# What packaging/cluster/README.md tells admins to set on the caller/trunk endpoints:
# session timers and an RTP timeout end the other party's leg of a dead node's call.
ENDPOINT_OPTIONS = "timers = yes\ntimers_sess_expires = 90\ntimers_min_se = 90\nrtp_timeout = 30\n"


def socket_url(pg: PostgresHandle, database: str) -> str:
    """The database's URL through the server's unix socket (reachable from any namespace)."""
    sockets = pg.data.parent / "sock"
    return f"postgresql+psycopg://postgres@/{database}?host={sockets}&port={pg.port}"


@dataclass
class Node:
    name: str
    host: Host
    pbx: LocalAsterisk
    service: ServiceProcess
    metrics_port: int

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.host.address}:{self.pbx.sip_port}"

    def readyz(self) -> dict[str, Any]:
        """The service's /readyz JSON (whatever its status code)."""
        url = f"http://{self.host.address}:{self.metrics_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))

    def app_registered(self) -> bool:
        """Has this node's service connected to its Asterisk? Only meaningful on a freshly
        (re)started Asterisk: ARI keeps listing an application whose client went away."""
        try:
            apps = self.pbx.ari_get("/applications")
        except OSError:
            return False
        return any(app.get("name") == self.pbx.app for app in apps)  # type: ignore[union-attr]

    def kill_asterisk(self) -> None:
        """kill -9 of this node's Asterisk (its service stays up)."""
        assert self.pbx.process is not None
        self.pbx.process.kill()
        self.pbx.process.wait(10)
        self.pbx.process = None


@dataclass
class Cluster:
    workdir: Path
    lan: Lan
    kamailio: Kamailio
    nodes: dict[str, Node]
    db_url: str
    phone_ports: dict[str, int]
    speech: Path
    runs: list[SippRun] = field(default_factory=list)

    def leader(self) -> str | None:
        """The node whose service holds the leader's advisory lock (docs/cluster.md), now."""
        engine = create_db_engine(self.db_url)
        try:
            with engine.connect() as conn:
                holder = conn.execute(text(_LEADER_SQL)).scalar()
        finally:
            engine.dispose()
        names = {f"astreinte-leader pbx-{name}": name for name in self.nodes}
        return names.get(str(holder)) if holder else None

    def callers(self, did: str, plans: Sequence[CallPlan], *, rate: float) -> CallerCrowd:
        crowd = start_callers(
            self.workdir / "sipp",
            plans,
            target=self.kamailio.target,
            did=did,
            rate=rate,
            speech=self.speech,
            name=f"crowd-{uuid.uuid4().hex[:6]}",
            local_ip=self.lan.gateway,
        )
        self.runs.append(crowd.run)
        return crowd

    def agent_phone(self, number: str, behaviour: str, **options: Any) -> AgentPhone:
        phone = start_agent_phone(
            self.workdir / "sipp",
            f"phone{number[1:]}-{uuid.uuid4().hex[:6]}",
            agent_phone_scenario(behaviour, speech=self.speech, **options),
            port=self.phone_ports[number],
            local_ip=self.lan.gateway,
        )
        self.runs.append(phone.run)
        return phone

    def answered_by(self, crowd: CallerCrowd) -> dict[str, str]:
        """Call-ID -> name of the node whose Asterisk answered it (the 200's Contact)."""
        path = trace_files(crowd.run).messages
        if not path.exists():
            return {}
        by_address = {n.host.address: n.name for n in self.nodes.values()}
        answered: dict[str, str] = {}
        for message in parse_trace(path.read_bytes()):
            if message.sent or message.status != 200 or message.cseq_method != "INVITE":
                continue
            contact = message.header("contact") or ""
            for address, name in by_address.items():
                if f"@{address}:" in contact or f"sip:{address}:" in contact:
                    answered[message.call_id] = name
        return answered

    def heal(self, timeout: float = 40.0) -> None:
        """Restart whatever of a node is down, then wait until Kamailio has every node in
        rotation and every service is connected to its Asterisk."""
        for node in self.nodes.values():
            if node.pbx.process is None or node.pbx.process.poll() is not None:
                node.pbx.start()
                if node.service.process is not None and node.service.process.poll() is None:
                    wait_until(node.app_registered, timeout=timeout, what=f"{node.name} on ARI")
            if node.service.process is None or node.service.process.poll() is not None:
                node.service.start(timeout=timeout, migrate=False)  # ready: on ARI
        self.kamailio.wait_states({n.sip_uri: True for n in self.nodes.values()}, timeout=timeout)

    def stop_runs(self) -> None:
        for run in self.runs:
            run.kill()
        self.runs.clear()


def _node(
    lan: Lan, name: str, work: Path, kamailio_address: str, db_url: str, phones: dict[str, int]
) -> Node:
    host = lan.host(name)
    node_dir = work / f"node-{name}"
    config_path = node_dir / "astreinte.yaml"
    spool = node_dir / "spool"
    spool.mkdir(parents=True)
    pbx = LocalAsterisk(
        node_dir / "asterisk",
        ari_password=ARI_PASSWORD,
        mobiles=phones,
        host=host.address,
        http_bind="0.0.0.0",
        system_name=f"pbx-{name}",  # distinct UNIQUEIDs (call ids); never "astreinte-..."
        phones_host=lan.gateway,
        callers_from=kamailio_address,
        endpoint_options=ENDPOINT_OPTIONS,
        command_prefix=lan.exec_prefix(host),
        # As an admin deploys it: the dialplan fallback reads this node's configuration.
        dialplan_globals={"ASTREINTE_CONFIG": str(config_path)},
    )
    metrics_port = free_port()
    config_path.write_text(
        e2e_config(
            ari_url=f"http://127.0.0.1:{pbx.http_port}",  # its own Asterisk, in its namespace
            db_url=db_url,
            recordings=node_dir / "rec",
            metrics_port=metrics_port,
            cel_file=pbx.cel_file,
            spool=spool,
            sip_port=pbx.sip_port,
            host=host.address,
        )
    )
    service = ServiceProcess(
        config_path,
        db_url,
        node_dir / "rec",
        node_dir / "service.log",
        env={"ASTREINTE_NODE_NAME": f"pbx-{name}"},  # the service's cluster.node
        command_prefix=lan.exec_prefix(host),
    )
    return Node(name, host, pbx, service, metrics_port)


@contextlib.contextmanager
def running_cluster(work: Path, pg: PostgresHandle, speech: Path) -> Iterator[Cluster]:
    """Kamailio + nodes a and b, their services started on one shared database; every
    process and namespace is gone afterwards, whatever happened."""
    database = f"cluster_{uuid.uuid4().hex[:8]}"
    create_database(pg.url, database)
    db_url = socket_url(pg, database)
    phones = {number: free_port(socket.SOCK_DGRAM) for number in (P1, P2, SUP)}
    with private_lan() as lan:
        kam_host = lan.host("kam")
        nodes = {
            name: _node(lan, name, work, kam_host.address, db_url, phones) for name in NODE_NAMES
        }
        kamailio = Kamailio(
            work / "kamailio",
            kam_host.address,
            [n.sip_uri for n in nodes.values()],
            command_prefix=lan.exec_prefix(kam_host),
        )
        cluster = Cluster(work, lan, kamailio, nodes, db_url, phones, speech)
        try:
            with ThreadPoolExecutor() as pool:  # each start waits for its own ARI
                list(pool.map(lambda node: node.pbx.start(), nodes.values()))
            for index, node in enumerate(nodes.values()):
                node.service.start(timeout=40, migrate=index == 0)  # one schema, once
            kamailio.start()
            yield cluster
        finally:
            cluster.stop_runs()
            kamailio.stop()
            for node in nodes.values():
                node.service.stop()
                node.pbx.stop()
