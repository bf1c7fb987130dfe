"""A line's test call on the real PBX: `astreinte test-call` asks the running service,
which calls the line through the inbound dialplan and rings the test endpoint only.

Passing: the dialplan's built-in endpoint answers and presses 1; no person's phone
gets an INVITE; the trail holds one call, outcome test_passed, whose hop says whom
the routing would have rung; the KPIs leave it out; the metrics say passed.
Failing: the test endpoint is a SIP phone that is down; the call is not bridged
within the line's timeout; the supervisor gets the alert by email (real SMTP) and
the metric says failed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from astreinte_ari.adapters.store.queries import get_call, list_calls
from astreinte_ari.reports.kpis import build_report
from tests.alerts import conftest as alert_servers
from tests.alerts.conftest import SMTP_PASSWORD, Mailbox
from tests.e2e.rig import (
    ARI_PASSWORD,
    DESK,
    LINE_FULL,
    LINE_SHORT,
    P1,
    P2,
    SUP,
    E2ERig,
    ServiceProcess,
    e2e_config,
    now_utc,
)
from tests.rig.polling import wait_until

pytestmark = pytest.mark.e2e
# The real SMTP server of the alert tests (aiosmtpd, STARTTLS and login).
tls_files = alert_servers.tls_files
mailbox = alert_servers.mailbox


def _with_test_calls(yaml: str, mailbox: Mailbox, links_port: int, key: Path) -> str:
    """The e2e configuration, its two lines tested, failures mailed to the supervisor."""
    yaml = yaml.replace(
        "    name: Maintenance E2E\n",
        '    name: Maintenance E2E\n    test_call: {at: ["03:30"], timeout: 20, alert: [sup]}\n',
    ).replace(
        "    name: Short cascade\n",
        "    name: Short cascade\n"
        f'    test_call: {{at: ["03:30"], endpoint: "sip:{DESK}", ring_timeout: 5,'
        " timeout: 10, alert: [sup]}\n",
    )
    yaml = yaml.replace(
        f'sup: {{name: Supervisor, mobile: "{SUP}"}}',
        f'sup: {{name: Supervisor, mobile: "{SUP}", email: sup@example.test}}',
    )
    return (
        yaml
        + f"""alerting:
{mailbox.smtp_yaml()}  links: {{listen_port: {links_port}, key_file: "{key}"}}
  channels: {{sup: [{{via: email}}]}}
"""
    )


@contextlib.contextmanager
def _service(rig: E2ERig, tmp_path: Path, mailbox: Mailbox) -> Iterator[ServiceProcess]:
    from astreinte_ari.devtools.localpbx import free_port

    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    metrics_port = free_port()
    key = tmp_path / "link.key"
    key.write_text("k" * 40 + "\n")
    config_path = tmp_path / "astreinte.yaml"
    base = e2e_config(
        ari_url=rig.pbx.ari_url,
        db_url=db_url,
        recordings=tmp_path / "rec",
        metrics_port=metrics_port,
        cel_file=rig.pbx.cel_file,
        sip_port=rig.pbx.sip_port,
    )
    config_path.write_text(_with_test_calls(base, mailbox, free_port(), key))
    proc = ServiceProcess(
        config_path,
        db_url,
        tmp_path / "rec",
        tmp_path / "service.log",
        env={"TEST_SMTP_PASSWORD": SMTP_PASSWORD},
    )
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        rig.cleanup()
        assert code == 0, f"service exited with {code}:\n{proc.log_tail()}"


def _test_call(proc: ServiceProcess, line: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASTREINTE_ARI_PASSWORD=ARI_PASSWORD)
    command = [sys.executable, "-m", "astreinte_ari", "test-call", line]
    return subprocess.run(
        [*command, "-c", str(proc.config_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _metric(proc: ServiceProcess, name: str, line: str) -> float | None:
    assert proc.metrics_url is not None
    with urllib.request.urlopen(proc.metrics_url, timeout=5) as reply:
        text = reply.read().decode()
    for row in text.splitlines():
        if row.startswith(f'{name}{{line="{line}"}} '):
            return float(row.split()[-1])
    return None


def test_a_passing_test_call_rings_no_one_is_marked_and_left_out_of_the_kpis(
    e2e_rig: E2ERig, tmp_path: Path, mailbox: Mailbox
) -> None:
    phones = {n: e2e_rig.agent_phone(n, "accept", ring_ms=200, dtmf_after_ms=500)
              for n in (P1, P2, SUP)}  # fmt: skip
    with _service(e2e_rig, tmp_path, mailbox) as proc:
        since = now_utc()
        done = _test_call(proc, LINE_FULL)
        assert done.returncode == 0, done.stdout + done.stderr + proc.log_tail()
        assert "passed" in done.stdout and "p1 +33610000001" in done.stdout, done.stdout
        # The after-hours announcement, the originate, the built-in endpoint's answer and
        # its key: seconds, well inside the line's 20 s.
        took = float(done.stdout.split("bridged with the test endpoint in ")[1].split(" s")[0])
        print(f"test call bridged in {took} s")
        assert took < 15, done.stdout
        assert proc.engine is not None
        [call] = list_calls(proc.engine, since=since, did=LINE_FULL, limit=5)
        detail = get_call(proc.engine, call.id)
        assert detail is not None
        assert detail.outcome == "test_passed", detail
        assert detail.caller_name == "astreinte test call"
        [hop] = detail.hops
        assert hop.person_id == "test-endpoint" and "would ring p1 +33610000001" in hop.label
        assert hop.outcome == "accepted" and hop.number == "local:builtin"
        report = build_report(
            proc.engine, since - timedelta(minutes=1), now_utc() + timedelta(minutes=1),
            timezone="Europe/Paris",
        )  # fmt: skip
        assert report.total == 0 and report.per_person == {}, report
        assert _metric(proc, "astreinte_test_call_last_result", "Maintenance E2E") == 1.0
        assert _metric(proc, "astreinte_test_call_last_success_timestamp_seconds",
                       "Maintenance E2E") is not None  # fmt: skip
        for number, phone in phones.items():
            assert phone.wire() == [], f"{number} was rung by a test call"
        assert mailbox.messages == []


def test_a_test_call_to_an_endpoint_that_is_down_alerts_by_email_and_says_failed(
    e2e_rig: E2ERig, tmp_path: Path, mailbox: Mailbox
) -> None:
    with _service(e2e_rig, tmp_path, mailbox) as proc:
        since = now_utc()
        done = _test_call(proc, LINE_SHORT)
        assert done.returncode == 1, done.stdout + done.stderr + proc.log_tail()
        assert "FAILED" in done.stdout and "not bridged within 10 s" in done.stdout, done.stdout
        assert proc.engine is not None
        [call] = list_calls(proc.engine, since=since, did=LINE_SHORT, limit=5)
        assert call.outcome == "test_failed"
        assert _metric(proc, "astreinte_test_call_last_result", "Short cascade") == 0.0
        wait_until(lambda: mailbox.messages or None, timeout=15, what="the alert by email")
        [mail] = mailbox.messages
        assert mail["To"] == "sup@example.test"
        subject = str(make_header(decode_header(mail["Subject"])))
        assert "Appel test en ÉCHEC sur Short cascade" in subject, subject
