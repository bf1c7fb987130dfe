"""Self-service changes on the web: an agent asks, the colleague agrees, a manager
decides; refusals name the labour rule; the JSON API does the same with the
X-CSRF-Token header; nobody acts on another team's requests."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp

from astreinte_ari.schedule.rota import who_is_on_call
from tests.web.conftest import Site
from tests.web.test_web_server import _client, _kinds, _sign_in

PARIS = ZoneInfo("Europe/Paris")


def _day_not_held_by(site: Site, person: str, first: date) -> date:
    team = site.overlay.current.teams["maint"]
    day = first
    while True:  # the whole day: not a Monday, when the handoff at 09:00 cuts it
        hours = [datetime(day.year, day.month, day.day, h, tzinfo=PARIS) for h in (0, 12, 23)]
        if day.weekday() != 0 and all(who_is_on_call(team, "primary", t) != person for t in hours):
            return day
        day += timedelta(days=1)


async def _csrf(http: aiohttp.ClientSession, site: Site) -> str:
    async with http.get(f"{site.base}/") as resp:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', await resp.text())
    assert found is not None
    return found[1]


async def _ask_cover(http: aiohttp.ClientSession, site: Site, day: date) -> aiohttp.ClientResponse:
    async with http.get(f"{site.base}/teams/maint/month?m={day:%Y-%m}") as resp:
        page = await resp.text()
    links = [html.unescape(h) for h in re.findall(r'href="(/changes/new\?[^"]+)"', page)]
    wanted = f"start={day.isoformat()}T00%3A00%3A00%2B01%3A00"
    link = next(h for h in links if wanted in h)
    async with http.get(f"{site.base}{link}") as resp:
        form = await resp.text()
    assert resp.status == 200 and 'value="cover"' in form
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields["reason"] = "rendez-vous <médical>"
    return await http.post(f"{site.base}/changes", data=fields, allow_redirects=False)


async def test_agent_asks_a_cover_manager_approves_planning_shows_it(site: Site) -> None:
    day = _day_not_held_by(site, "alice", date(2026, 12, 10))
    async with _client() as alice:
        await _sign_in(site, alice, "alice@example.test")
        resp = await _ask_cover(alice, site, day)
        assert resp.status == 303, await resp.text()
        change_id = resp.headers["Location"].split("done=")[1]
        async with alice.get(f"{site.base}/changes?done={change_id}") as listed:
            page = await listed.text()
        assert "en attente" in page and "rendez-vous &lt;médical&gt;" in page
        assert "Approuver" not in page  # an agent does not decide
    async with _client() as sup:
        await _sign_in(site, sup, "sup@example.test")
        csrf = await _csrf(sup, site)
        url = f"{site.base}/api/v1/changes/{change_id}/approve"
        async with sup.post(url, json={"note": "ok"}) as resp:
            assert resp.status == 403  # no CSRF header
        async with sup.post(url, json={"note": "ok"}, headers={"X-CSRF-Token": csrf}) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["status"] == "approved" and body["decided_by"] == "sup"
    async with _client() as alice:
        await _sign_in(site, alice, "alice@example.test")
        async with alice.get(f"{site.base}/teams/maint/month?m={day:%Y-%m}") as resp:
            month = await resp.text()
        row = re.search(rf'<th scope="row">\w+ {day.day}</th>(.*?)</tr>', month)
        assert row is not None
        assert "Alice &lt;b&gt;Martin&lt;/b&gt; (remplacement)" in row[1]
        assert "demandé par alice" in row[1]
        async with alice.get(f"{site.base}/api/v1/oncall") as resp:
            assert resp.status == 200 and (await resp.json())["lines"][0]["team"] == "maint"
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)
    assert who_is_on_call(site.overlay.current.teams["maint"], "primary", noon) == "alice"
    assert "web.login" in _kinds(site)


async def test_short_notice_is_refused_with_the_rule_named(site: Site) -> None:
    day = _day_not_held_by(site, "alice", date(2026, 12, 2))
    assert day < date(2026, 12, 8)  # within the 7 days' notice of the test team
    async with _client() as alice:
        await _sign_in(site, alice, "alice@example.test")
        resp = await _ask_cover(alice, site, day)
        page = await resp.text()
    assert resp.status == 409
    assert "règle « notice »" in page


async def test_swap_needs_the_colleague_and_other_teams_cannot_act(site: Site) -> None:
    day = _day_not_held_by(site, "bob", date(2026, 12, 10))  # alice's
    start = datetime(day.year, day.month, day.day, tzinfo=PARIS)
    async with _client() as alice:
        await _sign_in(site, alice, "alice@example.test")
        csrf = await _csrf(alice, site)
        end = start + timedelta(days=1)
        new = {"team": "maint", "rota": "primary", "kind": "swap", "counterpart": "bob",
               "start": start.isoformat(), "end": end.isoformat()}  # fmt: skip
        async with alice.post(
            f"{site.base}/api/v1/changes", json=new, headers={"X-CSRF-Token": csrf}
        ) as resp:
            made = await resp.json()
        assert resp.status == 201, made
    async with _client() as karim:  # another team: not visible, not actionable
        await _sign_in(site, karim, "karim@example.test")
        csrf = await _csrf(karim, site)
        async with karim.get(f"{site.base}/api/v1/changes") as resp:
            assert await resp.json() == []
        async with karim.post(
            f"{site.base}/api/v1/changes/{made['id']}/consent", headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 404
        async with karim.get(
            f"{site.base}/api/v1/teams/maint/shifts?from=2026-12-01T00:00:00Z&to=2026-12-31T00:00:00Z"
        ) as resp:
            assert resp.status == 404
    async with _client() as audrey:  # of the team, neither the colleague nor a manager
        await _sign_in(site, audrey, "audrey@example.test")
        csrf = await _csrf(audrey, site)
        async with audrey.post(
            f"{site.base}/changes/{made['id']}/approve", data={"csrf": csrf}
        ) as resp:
            assert resp.status == 403 and "permission" in await resp.text()
    async with _client() as bob:
        await _sign_in(site, bob, "bob@example.test")
        csrf = await _csrf(bob, site)
        async with bob.post(
            f"{site.base}/changes/{made['id']}/consent", data={"csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        async with bob.get(f"{site.base}/api/v1/changes?status=requested") as resp:
            (pending,) = await resp.json()
        assert pending["consented_at"] is not None
        async with bob.get(f"{site.base}/api/v1/openapi.json") as resp:
            spec = await resp.json()
        assert spec["openapi"].startswith("3.") and "/api/v1/changes/{id}/approve" in spec["paths"]


async def test_a_tool_uses_an_api_token_without_csrf_until_revoked(site: Site) -> None:
    token = site.desk.issue_api_token("sup", "ticketing tool", days=30)
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as tool:
        async with tool.get(f"{site.base}/api/v1/oncall", headers=auth) as resp:
            body = await resp.json()
        assert resp.status == 200 and {line["team"] for line in body["lines"]} == {"maint"}
        async with tool.post(f"{site.base}/api/v1/changes/nope/approve", headers=auth) as resp:
            assert resp.status == 404  # authenticated (no CSRF asked), the request is unknown
        wrong = {"Authorization": "Bearer " + "x" * 43}
        async with tool.get(f"{site.base}/api/v1/oncall", headers=wrong) as resp:
            assert resp.status == 401
        assert site.desk.store.revoke_api_tokens("sup", site.now[0]) == 1
        async with tool.get(f"{site.base}/api/v1/oncall", headers=auth) as resp:
            assert resp.status == 401
        async with tool.get(f"{site.base}/") as resp:  # a token is not a page session
            assert str(resp.url).endswith("/login")
    assert {"web.api_token", "web.api_token_revoked"} <= set(_kinds(site))
