"""Calendar subscriptions on the web: a person makes their own ICS URL (shown once)
and the real links endpoint serves it; a manager makes the team's through the JSON
API; nobody else sees or revokes them; without `alerting:` nothing is created."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import icalendar
import pytest
from sqlalchemy import select

from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.app.alerting_edges import start_alerting
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.helpers import LINK_KEY, NoTelephonyService
from tests.web.conftest import Site, open_site
from tests.web.test_web_changes import _csrf
from tests.web.test_web_server import _client, _sign_in

URL_RE = re.compile(r'id="feed-url"[^>]* value="([^"]+)"')


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[tuple[Site, Alerting, str]]:
    """The web site plus the alert links endpoint that serves /ics/<token>.ics."""
    port = free_port()
    public = f"http://127.0.0.1:{port}/astreinte"
    (tmp_path / "link.key").write_text(LINK_KEY + "\n")
    extra = (
        f'\nalerting:\n  links: {{listen_port: {port}, public_url: "{public}", '
        "key_file: link.key}\n"
    )
    async with open_site(tmp_path, extra) as site:
        config = site.overlay.current
        alerting = await start_alerting(
            config=config, engine=create_db_engine(config.database_url()),
            service=NoTelephonyService(), clock=site.clock, paused=True,
            current_config=lambda: site.overlay.current,
        )  # fmt: skip
        assert alerting is not None
        try:
            yield site, alerting, public
        finally:
            await alerting.close()


def _trail(site: Site) -> list[tuple[str, str, str]]:
    engine = site.server.desk.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log_table.c.kind, audit_log_table.c.subject_id, audit_log_table.c.payload)
            .where(audit_log_table.c.kind.like("calendar_feed.%"))
            .order_by(audit_log_table.c.seq)
        ).all()
    return [(k, s, p if isinstance(p, str) else json.dumps(p)) for k, s, p in rows]


async def _summaries(http: aiohttp.ClientSession, url: str) -> list[str]:
    async with http.get(url) as resp:
        assert resp.status == 200 and resp.content_type == "text/calendar"
        cal = icalendar.Calendar.from_ical(await resp.read())
    return [str(event["summary"]) for event in cal.walk("VEVENT")]


async def test_agent_subscribes_to_own_calendar_then_revokes(
    linked: tuple[Site, Alerting, str],
) -> None:
    site, _, public = linked
    mine = f"{site.base}/people/alice/month"
    async with _client() as alice, _client() as bob, _client() as root, _client() as feed:
        await _sign_in(site, alice, "alice@example.test")
        async with alice.get(mine) as resp:
            page = await resp.text()
        assert 'id="calendar"' in page and 'action="/people/alice/feeds"' in page
        async with alice.post(f"{mine[:-6]}/feeds", data={"team": "maint"}) as resp:
            assert resp.status == 403  # no CSRF token
        csrf = await _csrf(alice, site)
        form = {"csrf": csrf, "team": "maint"}
        async with alice.post(f"{site.base}/people/alice/feeds", data=form) as resp:
            created = await resp.text()
        assert resp.status == 200, created
        found = URL_RE.search(created)
        assert found is not None and "Thunderbird" in created
        url = html.unescape(found[1])
        assert re.fullmatch(re.escape(public) + r"/ics/[\w-]{32}\.ics", url)
        token = url.rsplit("/", 1)[1].removesuffix(".ics")

        # The real links endpoint serves it: alice's shifts only.
        summaries = await _summaries(feed, url)
        assert summaries and all(s.endswith("(alice)") for s in summaries)

        # Listed (no token) on her page; the URL is never shown again.
        async with alice.get(mine) as resp:
            page = await resp.text()
        listed = re.findall(r'action="/feeds/(\w+)/revoke"', page)
        assert len(listed) == 1 and token not in page
        feed_id = listed[0]

        # Bob (same team) neither sees nor revokes it; the admin sees it.
        await _sign_in(site, bob, "bob@example.test")
        async with bob.get(mine) as resp:
            assert resp.status == 200 and 'id="calendar"' not in await resp.text()
        async with bob.get(f"{site.base}/api/v1/feeds") as resp:
            assert await resp.json() == []
        bob_csrf = await _csrf(bob, site)
        revoke = f"{site.base}/feeds/{feed_id}/revoke"
        async with bob.post(revoke, data={"csrf": bob_csrf}, allow_redirects=False) as resp:
            assert resp.status == 404
        async with bob.post(
            f"{site.base}/api/v1/feeds/{feed_id}/revoke", headers={"X-CSRF-Token": bob_csrf}
        ) as resp:
            assert resp.status == 404
        async with bob.post(
            f"{site.base}/people/alice/feeds", data={**form, "csrf": bob_csrf}
        ) as resp:
            assert resp.status == 404  # nobody subscribes for someone else
        assert len(re.findall("calendar_feed.created", str(_trail(site)))) == 1
        await _sign_in(site, root, "root@example.test")
        async with root.get(f"{site.base}/api/v1/feeds") as resp:
            assert [f["id"] for f in await resp.json()] == [feed_id]
        assert len(await _summaries(feed, url)) == len(summaries)  # still served

        # Alice revokes it: the URL is a 404 from then on.
        async with alice.post(revoke, data={"csrf": csrf}, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/people/alice/month#calendar"
        async with feed.get(url) as resp:
            assert resp.status == 404
        async with alice.post(revoke, data={"csrf": csrf}, allow_redirects=False) as resp:
            assert resp.status == 404  # already revoked

    trail = _trail(site)
    assert [(k, s) for k, s, _ in trail] == [
        ("calendar_feed.created", feed_id),
        ("calendar_feed.revoked", feed_id),
    ]
    assert all(json.loads(p)["by"] == "alice" and token not in p for _, _, p in trail)


async def test_manager_makes_a_team_feed_by_the_api(linked: tuple[Site, Alerting, str]) -> None:
    site, _, _ = linked
    api = f"{site.base}/api/v1/feeds"
    async with _client() as sup, _client() as alice, _client() as feed:
        await _sign_in(site, sup, "sup@example.test")
        csrf = await _csrf(sup, site)
        body = {"team": "maint", "scope": "team"}
        async with sup.post(api, json=body) as resp:
            assert resp.status == 403  # no X-CSRF-Token header
        async with sup.post(api, json=body, headers={"X-CSRF-Token": csrf}) as resp:
            made = await resp.json()
        assert resp.status == 201, made
        assert made["scope"] == "team" and made["person"] is None and made["created_by"] == "sup"
        people = {re.sub(r".*\((\w+)\)$", r"\1", s) for s in await _summaries(feed, made["url"])}
        assert {"alice", "bob"} <= people
        async with sup.get(f"{site.base}/teams/maint/month") as resp:
            page = await resp.text()
        assert (
            f'action="/feeds/{made["id"]}/revoke"' in page and 'action="/teams/maint/feeds"' in page
        )

        # An agent may not make nor see nor revoke the team's feed.
        await _sign_in(site, alice, "alice@example.test")
        alice_csrf = {"X-CSRF-Token": await _csrf(alice, site)}
        async with alice.post(api, json=body, headers=alice_csrf) as resp:
            assert resp.status == 404
        async with alice.get(api) as resp:
            assert await resp.json() == []
        async with alice.get(f"{site.base}/teams/maint/month") as resp:
            assert 'id="calendar"' not in await resp.text()
        revoke = f"{api}/{made['id']}/revoke"
        async with alice.post(revoke, headers=alice_csrf) as resp:
            assert resp.status == 404

        async with sup.get(api) as resp:
            assert [f["id"] for f in await resp.json()] == [made["id"]]
        async with sup.post(revoke, headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200 and (await resp.json())["id"] == made["id"]
        async with feed.get(made["url"]) as resp:
            assert resp.status == 404
    assert [k for k, _, _ in _trail(site)] == ["calendar_feed.created", "calendar_feed.revoked"]


async def test_without_alerting_the_section_says_why_and_nothing_is_made(site: Site) -> None:
    async with _client() as alice:
        await _sign_in(site, alice, "alice@example.test")
        async with alice.get(f"{site.base}/people/alice/month") as resp:
            page = await resp.text()
        assert "n&#x27;est pas disponible" in page and "« alerting »" in page
        assert 'action="/people/alice/feeds"' not in page
        csrf = await _csrf(alice, site)
        form = {"csrf": csrf, "team": "maint"}
        async with alice.post(f"{site.base}/people/alice/feeds", data=form) as resp:
            assert resp.status == 409 and "feed-url" not in await resp.text()
        headers = {"X-CSRF-Token": csrf}
        async with alice.post(
            f"{site.base}/api/v1/feeds", json={"team": "maint"}, headers=headers
        ) as resp:
            assert resp.status == 409 and (await resp.json())["error"] == "unavailable"
    assert _trail(site) == []
