"""The web planning over real HTTP: sign-in by one-time link, sessions, roles, CSRF."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import aiohttp
from sqlalchemy import select

from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.web_sessions import web_login_links_table, web_sessions_table
from astreinte_ari.web.auth import token_hash
from tests.web.conftest import Site


def _client() -> aiohttp.ClientSession:
    # unsafe: the cookie jar keeps cookies of an IP address host (127.0.0.1)
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _wait_sent(site: Site, count: int) -> None:
    async with asyncio.timeout(5):
        while len(site.sender.sent) < count:
            await asyncio.sleep(0.01)


async def _sign_in(site: Site, http: aiohttp.ClientSession, address: str) -> str:
    before = len(site.sender.sent)
    async with http.post(f"{site.base}/login", data={"address": address}) as resp:
        assert resp.status == 200
    await _wait_sent(site, before + 1)
    url = site.sender.sent[-1][2]
    token = url.rsplit("/", 1)[1]
    async with http.get(f"{site.base}/login/{token}") as resp:  # a scanner's GET signs nobody in
        assert resp.status == 200
        assert "astreinte_session" not in {c.key for c in http.cookie_jar}
    async with http.post(f"{site.base}/login/{token}", allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
        cookie = resp.cookies["astreinte_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
    return token


def _kinds(site: Site) -> list[str]:
    engine = site.server.desk.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return list(conn.scalars(select(audit_log_table.c.kind).order_by(audit_log_table.c.seq)))


async def test_agent_signs_in_by_email_link_and_sees_only_their_team(site: Site) -> None:
    async with _client() as http:
        await _sign_in(site, http, "  Alice@Example.TEST ")
        async with http.get(f"{site.base}/") as resp:
            page = await resp.text()
        assert resp.status == 200
        assert "Maintenance &lt;usine&gt;" in page  # escaped, never raw
        assert "<usine>" not in page and "<b>Martin" not in page
        assert "Informatique" not in page  # the other team's line
        assert re.search(r"Alice &lt;b&gt;Martin&lt;/b&gt;", page)  # on call this week
        for path in ("/teams/info/month", "/teams/info/year", "/people/karim/month"):
            async with http.get(f"{site.base}{path}") as resp:
                assert resp.status == 404, path
        async with http.get(f"{site.base}/teams/maint/month?m=2026-12") as resp:
            month = await resp.text()
        assert resp.status == 200
        assert "Noël &lt;3" in month and "remplacement" in month and "jour férié" in month
    assert site.sender.sent[0][:2] == ("alice", "email")
    assert _kinds(site)[-2:] == ["web.login_link", "web.login"]


async def test_unknown_address_gets_the_same_answer_and_no_link(site: Site) -> None:
    async with _client() as http:
        async with http.post(f"{site.base}/login", data={"address": "nobody@x.test"}) as resp:
            unknown = await resp.text()
        async with http.post(f"{site.base}/login", data={"address": "06 12 34 56 79"}) as resp:
            known = await resp.text()
    assert unknown == known
    await _wait_sent(site, 1)
    assert site.sender.sent == [("bob", "sms", site.sender.sent[0][2])]


async def test_link_is_single_use_expires_and_requests_are_rate_limited(site: Site) -> None:
    async with _client() as http:
        token = await _sign_in(site, http, "bob@example.test")
        async with http.post(f"{site.base}/login/{token}", allow_redirects=False) as resp:
            assert resp.status == 403  # used
        for _ in range(5):
            async with http.post(f"{site.base}/login", data={"address": "bob@example.test"}):
                pass
    await site.desk.links_sent()  # every link allowed is out: no more were started
    assert len(site.sender.sent) == 3  # 3 per address per 15 minutes
    late = site.sender.sent[-1][2].rsplit("/", 1)[1]
    site.now[0] += timedelta(minutes=16)
    async with (
        _client() as http,
        http.post(f"{site.base}/login/{late}", allow_redirects=False) as resp,
    ):
        assert resp.status == 403
    kinds = _kinds(site)
    assert "web.login_throttled" in kinds
    assert kinds.count("web.login_refused") == 2
    engine = site.server.desk.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:  # only hashes are stored
        stored = set(conn.scalars(select(web_login_links_table.c.token_hash)))
    assert token not in stored and token_hash(token) in stored


async def test_expired_session_and_posts_without_csrf_are_refused(site: Site) -> None:
    async with _client() as http:
        await _sign_in(site, http, "alice@example.test")
        async with http.post(f"{site.base}/logout", allow_redirects=False) as resp:
            assert resp.status == 403  # no CSRF token
        async with http.get(f"{site.base}/") as resp:
            page = await resp.text()
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        assert csrf is not None
        headers = {"Origin": "http://evil.example"}
        async with http.post(
            f"{site.base}/logout", data={"csrf": csrf[1]}, headers=headers, allow_redirects=False
        ) as resp:
            assert resp.status == 403  # another site's page
        site.now[0] += timedelta(hours=12, seconds=1)
        async with http.get(f"{site.base}/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/login"
    site.now[0] -= timedelta(hours=12, seconds=1)
    async with _client() as http:
        await _sign_in(site, http, "alice@example.test")
        async with http.get(f"{site.base}/") as resp:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await resp.text())
        assert csrf is not None
        async with http.post(
            f"{site.base}/logout", data={"csrf": csrf[1]}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        async with http.get(f"{site.base}/", allow_redirects=False) as resp:
            assert resp.status == 303
    engine = site.server.desk.store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert conn.scalar(select(web_sessions_table.c.token_hash).limit(1)) is not None
    assert "web.logout" in _kinds(site)


async def test_auditor_and_admin_see_every_team_in_english(site: Site) -> None:
    async with _client() as http:
        await _sign_in(site, http, "audrey@example.test")
        headers = {"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}
        async with http.get(f"{site.base}/", headers=headers) as resp:
            page = await resp.text()
        assert "Informatique" in page and "Maintenance" in page and "On call now" in page
        async with http.get(f"{site.base}/people/karim/year?y=2026", headers=headers) as resp:
            assert resp.status == 200
            assert "Karim Haddad" in await resp.text()
