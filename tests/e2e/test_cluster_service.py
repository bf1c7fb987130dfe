"""Two real `astreinte run` services on one PostgreSQL database elect one leader;
a SIGSTOPped leader is replaced once its heartbeat is node_lost_after_seconds
old and steps down when it thaws; a killed leader is replaced within a try and a
lease (~2.5 s here). Each service says where it stands in /readyz's `cluster`.

A reminder (an alert's second round) due while the leader is frozen, or killed,
is mailed once, by the node that took over (real SMTP server), and is on record
once in the alert's events and the audit trail (issue 19).

(Both are attached to the one test Asterisk, under two ARI application names:
pbx-a's takes every call; the Kamailio rig runs one Asterisk per node.)"""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.alerting.model import Alert
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts import conftest as alert_servers
from tests.alerts.conftest import SMTP_PASSWORD, Mailbox
from tests.e2e.rig import LINE_SHORT, P1, SUP, E2ERig, ServiceProcess, e2e_config
from tests.rig.polling import wait_until
from tests.rig.postgres import create_database

pytestmark = pytest.mark.postgres
# The real SMTP server of the alert tests (aiosmtpd, STARTTLS and login).
tls_files = alert_servers.tls_files
mailbox = alert_servers.mailbox

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


@contextlib.contextmanager
def service_pair(
    e2e_rig: E2ERig,
    postgres_url: str,
    tmp_path: Path,
    *,
    extra_yaml: str = "",
    edit: Callable[[str], str] = str,
    env: Mapping[str, str] | None = None,
) -> Iterator[dict[str, tuple[ServiceProcess, int]]]:
    """pbx-a and pbx-b started on one new database, each with `extra_yaml` (its own
    `{links_port}` filled in) and its configuration passed through `edit`; every
    process thawed and stopped afterwards."""
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
                extra_yaml=CLUSTER + "\n" + extra_yaml.replace("{links_port}", str(free_port())),
            ).replace("app: astreinte}", f"app: {app}}}")
            (work / "astreinte.yaml").write_text(edit(text))
            proc = ServiceProcess(
                work / "astreinte.yaml",
                db_url,
                work / "recordings",
                work / "service.log",
                env={"ASTREINTE_NODE_NAME": name, **(env or {})},
            )
            proc.start(migrate=name == "pbx-a")
            nodes[name] = (proc, port)
        yield nodes
    finally:
        for proc, _ in nodes.values():
            if proc.process is not None:
                proc.signal(signal.SIGCONT)
            proc.stop()
        e2e_rig.cleanup()


@pytest.fixture
def two_nodes(
    e2e_rig: E2ERig, postgres_url: str, tmp_path: Path
) -> Iterator[dict[str, tuple[ServiceProcess, int]]]:
    with service_pair(e2e_rig, postgres_url, tmp_path) as nodes:
        yield nodes


def leaders(ports: Mapping[str, int]) -> list[str]:
    return [name for name, port in ports.items() if role(port) == "leader"]


def test_one_leader_a_frozen_one_is_replaced_and_a_killed_one_too(
    two_nodes: dict[str, tuple[ServiceProcess, int]],
) -> None:
    ports = {name: port for name, (_, port) in two_nodes.items()}
    first = wait_until(
        lambda: leaders(ports) if len(leaders(ports)) == 1 else None, timeout=15, what="leader"
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
    # Its lease ran out while it was stopped: /readyz may say so before its first
    # tick has found the lock session ended and logged the step-down.
    stepped_down = f"leadership lost on node {leader}"
    wait_until(lambda: stepped_down in frozen.log_tail(400), timeout=5, what="step-down logged")
    assert leaders(ports) == [other]

    # Killed (SIGKILL): the server ends its session at once, the lock is free.
    killed, _ = two_nodes[other]
    killed.signal(signal.SIGKILL)
    died = time.monotonic()
    wait_until(lambda: role(ports[leader]) == "leader", timeout=10, what="takeover from killed")
    took_killed = time.monotonic() - died
    assert took_killed <= 3.5, took_killed  # one try (1 s), then one lease (1.5 s)
    print(f"\ntakeover: frozen leader {took_frozen:.2f} s, killed leader {took_killed:.2f} s")


# -- issue 19: a reminder due while leadership moves is sent once, by the new leader --

RENOTIFY_S = 30  # seconds: the shortest renotify_every a policy accepts
CALLERS = {"frozen": "+33199000101", "killed": "+33199000102"}
# Hang-up times after the answer: both past the announcement (~6.7 s), so both calls
# are missed; their alerts (and reminders) come ~12 s apart: time for a takeover
# from a frozen leader (~6 s) and the thawed one to follow.
HOLD_MS = {"frozen": 8000, "killed": 20000}


def _alerting_yaml(mailbox: Mailbox, key: Path) -> str:
    return f"""alerting:
{mailbox.smtp_yaml()}  links: {{listen_port: {{links_port}}, key_file: "{key}"}}
  channels: {{p1: [{{via: email}}], sup: [{{via: email}}]}}
  policies:
    missed_call: {{renotify_every: {RENOTIFY_S}s, max_rounds: 3}}
"""


def _with_emails(text: str) -> str:
    for person, number in (("p1", P1), ("sup", SUP)):
        plain = f'mobile: "{number}"}}'
        assert plain in text
        text = text.replace(plain, f'mobile: "{number}", email: {person}@example.test}}')
    return text


def _mails(mailbox: Mailbox, caller: str) -> list[Message]:
    """What the mailbox got about the missed call of `caller` (by its subject)."""
    return [
        mail
        for mail in list(mailbox.messages)
        if caller in str(make_header(decode_header(str(mail["Subject"]))))
    ]


def _wait_clock(at: datetime, what: str) -> None:
    ahead = (at - datetime.now(UTC)).total_seconds()
    wait_until(lambda: datetime.now(UTC) >= at, timeout=max(ahead, 0) + 2, what=what, every=0.02)


def _round_two_settled(engine: Engine, alert: Alert) -> bool:
    """Round 2 on record and the one pending wake-up the third round's: nothing
    else is due for this alert, so no late duplicate can still be on its way."""
    row = AlertStore(engine).get(alert.id)
    with engine.connect() as conn:
        wake = conn.execute(
            text("SELECT next_run_time FROM apscheduler_jobs WHERE id = :id"),
            {"id": f"alert-{alert.id}"},
        ).scalar()
    third = (alert.opened_at + timedelta(seconds=2 * RENOTIFY_S)).timestamp()
    return row is not None and row.next_step == 2 and wake is not None and abs(wake - third) < 1


def test_a_reminder_due_while_the_leader_is_frozen_or_killed_is_mailed_once_by_the_next(
    e2e_rig: E2ERig, postgres_url: str, tmp_path: Path, mailbox: Mailbox
) -> None:
    """Two missed calls, two alerts whose second round falls due while the leader is
    frozen (SIGSTOP, then thawed), then while the next one is killed (SIGKILL): the
    node that took over mails each reminder, once; the thawed one sends nothing."""
    key = tmp_path / "link.key"
    key.write_text("k" * 40 + "\n")
    with contextlib.ExitStack() as stack:
        nodes = stack.enter_context(service_pair(
            e2e_rig, postgres_url, tmp_path, extra_yaml=_alerting_yaml(mailbox, key),
            edit=_with_emails, env={"TEST_SMTP_PASSWORD": SMTP_PASSWORD},
        ))  # fmt: skip
        ports = {name: port for name, (_, port) in nodes.items()}
        [first] = wait_until(
            lambda: leaders(ports) if len(leaders(ports)) == 1 else None, timeout=15, what="leader"
        )
        for case, caller in CALLERS.items():  # pbx-a's application takes both calls
            e2e_rig.call(LINE_SHORT, hold_ms=HOLD_MS[case], caller=caller)
        engine = create_db_engine(nodes["pbx-a"][0].db_url)  # outlives either node
        stack.callback(engine.dispose)

        def opened() -> dict[str, Alert] | None:
            found = {a.caller_number: a for a in AlertStore(engine).list(open_only=False)}
            alerts = {case: found[c] for case, c in CALLERS.items() if c in found}
            mailed = all(len(_mails(mailbox, c)) == 1 for c in CALLERS.values())
            return alerts if mailed and len(alerts) == len(CALLERS) else None

        alerts = wait_until(opened, timeout=40, what="both alerts, first round mailed")
        due = {case: a.opened_at + timedelta(seconds=RENOTIFY_S) for case, a in alerts.items()}
        sender: dict[str, str] = {}
        late: dict[str, float] = {}

        def reminded(case: str) -> bool:
            return len(_mails(mailbox, CALLERS[case])) >= 2

        # Frozen just before the reminder is due: the other node takes over once the
        # leader's heartbeat is 3 s old, and mails it; the frozen one thaws a follower.
        other = next(n for n in ports if n != first)
        _wait_clock(due["frozen"] - timedelta(seconds=0.5), "the first reminder nearly due")
        frozen, _ = nodes[first]
        frozen.signal(signal.SIGSTOP)
        assert not reminded("frozen"), "mailed before its due time"
        wait_until(lambda: reminded("frozen"), timeout=15, what="the reminder, leader frozen")
        late["frozen"] = (datetime.now(UTC) - due["frozen"]).total_seconds()
        assert role(ports[other]) == "leader"
        sender["frozen"] = other  # the frozen process could not have: it was stopped
        frozen.signal(signal.SIGCONT)
        wait_until(lambda: role(ports[first]) == "follower", timeout=10, what="thawed following")

        # Killed just before the second reminder is due: the thawed node takes over.
        ahead = (due["killed"] - datetime.now(UTC)).total_seconds()
        assert ahead > 1.0, f"the first takeover ran {-ahead:.1f} s into the second reminder"
        _wait_clock(due["killed"] - timedelta(seconds=0.5), "the second reminder nearly due")
        nodes[other][0].signal(signal.SIGKILL)
        wait_until(lambda: reminded("killed"), timeout=15, what="the reminder, leader killed")
        late["killed"] = (datetime.now(UTC) - due["killed"]).total_seconds()
        assert role(ports[first]) == "leader"
        sender["killed"] = first

        wait_until(
            lambda: all(_round_two_settled(engine, a) for a in alerts.values()),
            timeout=10,
            what="both alerts' round 2 on record, round 3 the only wake-up left",
        )
        logs = {
            name: proc.log_path.read_text(errors="replace") for name, (proc, _) in nodes.items()
        }
        store = AlertStore(engine)
        for case, alert in alerts.items():
            mails = _mails(mailbox, CALLERS[case])
            assert [m["To"] for m in mails] == ["p1@example.test"] * 2, (case, mails)
            notified = [e[4].split(":")[0] for e in store.events(alert.id) if e[1] == "notified"]
            assert notified == ["round 1", "round 2"], (case, store.events(alert.id))
            with engine.connect() as conn:
                audited = conn.execute(
                    text("SELECT payload FROM audit_log WHERE kind = 'alert.notified' "
                         "AND subject_id = :id ORDER BY seq"), {"id": alert.id},
                ).scalars().all()  # fmt: skip
            assert [json.loads(p)["detail"].split(":")[0] for p in audited] == notified
            line = f"alert {alert.id}: round 2 sent to p1 by email"
            assert [n for n, log in logs.items() if line in log] == [sender[case]], case
        report = verify(engine, open_after=None)
        assert report.ok, report.problems[:5]
        print(f"\nreminder mailed after its due time: frozen leader {late['frozen']:.2f} s, "
              f"killed leader {late['killed']:.2f} s")  # fmt: skip
        assert late["frozen"] <= 8.0 and late["killed"] <= 4.0, late
