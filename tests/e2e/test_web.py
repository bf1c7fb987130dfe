"""The web planning in a real browser (headless Chromium), served by the real service.

An agent signs in with the link the service mails (real SMTP: aiosmtpd), sees who
is on call, cannot reach another team's planning even by its URL; an expired
session and a POST without the CSRF token are refused; an agent gives her shift to a
colleague (a swap), he agrees, the manager approves, and the next call rings him.
Screenshots at phone and desktop widths go to artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import update

from astreinte_ari.adapters.store.web_sessions import web_sessions_table
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts import conftest as alert_servers
from tests.alerts.conftest import SMTP_PASSWORD, Mailbox
from tests.e2e.rig import LINE_FULL, P1, P2, SUP, E2ERig, ServiceProcess, e2e_config, now_utc
from tests.rig.polling import wait_until

pytestmark = pytest.mark.e2e
tls_files = alert_servers.tls_files
mailbox = alert_servers.mailbox
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"


class WebService:
    def __init__(self, proc: ServiceProcess, base: str) -> None:
        self.proc = proc
        self.base = base


def web_yaml(base_yaml: str, *, mailbox: Mailbox, web_port: int, links_port: int, key: Path) -> str:
    """The e2e configuration with emails, a second team, `web:` and SMTP for the links."""
    yaml = (
        base_yaml.replace(
            f'p1: {{name: Agent One, mobile: "{P1}"}}',
            f'p1: {{name: Agent One, mobile: "{P1}", email: p1@example.test}}',
        )
        .replace(
            f'p2: {{name: Agent Two, mobile: "{P2}"}}',
            f'p2: {{name: Agent Two, mobile: "{P2}", email: p2@example.test}}',
        )
        .replace("  e2e:\n    people:\n", "  e2e:\n    managers: [sup]\n    people:\n", 1)
    )
    yaml = yaml.replace(
        f'sup: {{name: Supervisor, mobile: "{SUP}"}}',
        f'sup: {{name: Supervisor, mobile: "{SUP}", email: sup@example.test}}',
    )
    yaml = yaml.replace(
        "lines:\n",
        f'web: {{listen: "127.0.0.1:{web_port}", public_url: "http://127.0.0.1:{web_port}"}}\n'
        "lines:\n",
        1,
    )
    return (
        yaml
        + """  other:
    people:
      olga: {name: Olga Other, mobile: "+33610000099", email: olga@example.test}
    rotas:
      primary: {every: week, handoff: "mon 09:00", start: 2026-01-05, people: [olga]}
"""
        + f"""alerting:
{mailbox.smtp_yaml()}  links: {{listen_port: {links_port}, public_url: "http://127.0.0.1:{links_port}",
          key_file: "{key}"}}
"""
    )


@contextlib.contextmanager
def web_service(rig: E2ERig, tmp_path: Path, mailbox: Mailbox) -> Iterator[WebService]:
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    key = tmp_path / "link.key"
    key.write_text("k" * 40 + "\n")
    web_port = free_port()
    base = e2e_config(
        ari_url=rig.pbx.ari_url,
        db_url=db_url,
        recordings=tmp_path / "rec",
        cel_file=rig.pbx.cel_file,
        sip_port=rig.pbx.sip_port,
    )
    config_path = tmp_path / "astreinte.yaml"
    config_path.write_text(
        web_yaml(base, mailbox=mailbox, web_port=web_port, links_port=free_port(), key=key)
    )
    rig.pbx.cli(f"dialplan set global ASTREINTE_CONFIG {config_path}")
    proc = ServiceProcess(
        config_path, db_url, tmp_path / "rec", tmp_path / "service.log",
        env={"TEST_SMTP_PASSWORD": SMTP_PASSWORD},
    )  # fmt: skip
    proc.start()
    try:
        yield WebService(proc, f"http://127.0.0.1:{web_port}")
    finally:
        code = proc.stop()
        rig.cleanup()
        assert code == 0, f"service exited with {code}:\n{proc.log_tail()}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def emailed_link(box: Mailbox, to: str, count: int = 1) -> str:
    def found() -> str | None:
        mails = [m for m in box.messages if m["To"] == to]
        if len(mails) < count:
            return None
        body = mails[count - 1].get_payload(decode=True).decode()
        match = re.search(r"https?://\S+/login/[A-Za-z0-9_-]{43}", body)
        return match[0] if match else None

    return wait_until(found, timeout=15, what=f"the sign-in email to {to}")


def sign_in(page: Page, site: WebService, box: Mailbox, email: str, count: int = 1) -> None:
    page.goto(f"{site.base}/")
    assert page.url.endswith("/login")  # not signed in yet
    page.get_by_label(re.compile("E-mail ou mobile|Email or mobile")).fill(email)
    page.get_by_role("button", name=re.compile("Recevoir le lien|Send me the link")).click()
    page.get_by_role("status").wait_for()
    assert "lien de connexion" in page.get_by_role("status").inner_text()
    page.goto(emailed_link(box, email, count))
    page.get_by_role("button", name="Connexion").click()
    page.get_by_role("heading", name="D'astreinte maintenant").wait_for()


def test_agent_signs_in_by_mail_sees_on_call_and_nothing_else(
    e2e_rig: E2ERig, tmp_path: Path, mailbox: Mailbox, browser: Browser
) -> None:
    with web_service(e2e_rig, tmp_path, mailbox) as site:
        context = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
        page = context.new_page()
        sign_in(page, site, mailbox, "p1@example.test")
        cascade = page.get_by_role("region", name="Maintenance E2E").get_by_role("list")
        hops = cascade.get_by_role("listitem").all_inner_texts()
        assert hops[0].startswith("Agent One") and "6 s" in hops[0]
        assert hops[1].startswith("Agent Two") and hops[2].startswith("Supervisor")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "planning-phone.png", full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=SCREENSHOTS / "planning-desktop.png", full_page=True)
        # Another team: neither linked nor reachable by its URL.
        assert page.get_by_role("link", name="Équipe other").count() == 0
        assert "Olga" not in page.content()
        for path in ("/teams/other/month", "/teams/other/year", "/people/olga/month"):
            response = page.goto(f"{site.base}{path}")
            assert response is not None and response.status == 404, path
        page.goto(f"{site.base}/teams/e2e/month")
        SCREENSHOTS.joinpath("month-desktop.png").parent.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOTS / "month-desktop.png")
        assert page.get_by_role("table").count() == 1
        # Their own calendar URL, shown once, served by the running links endpoint.
        page.get_by_role("link", name="Mon planning").click()
        page.get_by_role("button", name="Créer une adresse d'abonnement").click()
        feed_url = page.get_by_label("Adresse d'abonnement (copiez-la maintenant)").input_value()
        feed = page.request.get(feed_url)
        assert feed.status == 200 and feed.text().startswith("BEGIN:VCALENDAR"), feed_url
        page.goto(f"{site.base}/teams/e2e/month")
        # A POST without the session's CSRF token (another site's form) is refused.
        refused = page.request.post(f"{site.base}/logout", form={"x": "1"}, max_redirects=0)
        assert refused.status == 403
        forged = page.request.post(
            f"{site.base}/logout",
            form={"csrf": page.locator("input[name=csrf]").first.input_value()},
            headers={"Origin": "http://evil.example"},
            max_redirects=0,
        )
        assert forged.status == 403
        page.goto(f"{site.base}/")
        assert page.url == f"{site.base}/"  # still signed in
        # The session expires (as if 12 hours had passed): the next page asks to sign in.
        assert site.proc.engine is not None
        with site.proc.engine.begin() as conn:
            conn.execute(
                update(web_sessions_table).values(
                    expires_at=datetime.now(UTC) - timedelta(seconds=1)
                )
            )
        page.goto(f"{site.base}/")
        assert page.url == f"{site.base}/login"
        context.close()


def test_agent_swaps_manager_approves_and_the_line_rings_the_new_person(
    e2e_rig: E2ERig, tmp_path: Path, mailbox: Mailbox, browser: Browser
) -> None:
    with web_service(e2e_rig, tmp_path, mailbox) as site:
        holder = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
        one = holder.new_page()
        sign_in(one, site, mailbox, "p1@example.test")
        # Today's primary shift is Agent One's: she gives it to Agent Two (a swap).
        one.goto(f"{site.base}/teams/e2e/month")
        today = one.locator("tr.today td").first  # the primary column
        assert "Agent One" in today.inner_text()
        today.get_by_role("link", name="Demander un changement pour ce créneau").click()
        one.get_by_label("Collègue").select_option(label="Agent Two")
        one.get_by_label("Motif (facultatif)").fill("Rendez-vous médical")
        one.get_by_role("button", name="Envoyer la demande").click()
        one.get_by_role("status").wait_for()
        assert "en attente" in one.get_by_role("status").inner_text()
        # Agent Two agrees, from his phone.
        agent = browser.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR")
        page = agent.new_page()
        sign_in(page, site, mailbox, "p2@example.test")
        page.goto(f"{site.base}/changes")
        page.get_by_role("button", name="Donner mon accord").click()
        page.get_by_role("status").wait_for()
        assert page.get_by_role("button", name="Donner mon accord").count() == 0
        # The manager approves.
        manager = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
        boss = manager.new_page()
        sign_in(boss, site, mailbox, "sup@example.test")
        boss.goto(f"{site.base}/changes")
        boss.get_by_role("button", name="Approuver").click()
        boss.get_by_role("status").wait_for()
        assert "approuvée" in boss.get_by_role("status").inner_text()
        boss.screenshot(path=SCREENSHOTS / "changes-desktop.png", full_page=True)
        # The planning shows the new person at once, first in the line's cascade.
        page.goto(f"{site.base}/")
        cascade = page.get_by_role("region", name="Maintenance E2E").get_by_role("listitem")
        assert cascade.first.inner_text().startswith("Agent Two")
        page.goto(f"{site.base}/teams/e2e/month")
        assert "Agent Two" in page.locator("tr.today td").first.inner_text()
        # A call to the line now rings Agent Two first, who accepts.
        since = now_utc()
        phone = e2e_rig.phone(P2, e2e_rig.agent("accept"))
        caller = e2e_rig.call(LINE_FULL, hold_ms=14000)
        for run in (caller, phone):
            assert run.wait(60) == 0, run.output()
        call = site.proc.wait_for_call(since, LINE_FULL)
        assert call.hops[0].person_id == "p2" and call.hops[0].number == P2
        assert call.outcome == "accepted"
        assert P1 not in {h.number for h in call.hops}
        holder.close()
        agent.close()
        manager.close()
