"""Calendar subscriptions end to end: URLs made with the CLI, fetched over HTTP from
the running links endpoint, read back with icalendar/recurring-ical-events and
compared with `astreinte who` at several instants; ETag/304, person feeds,
live edits, revocation, and the audit trail (never the token)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import icalendar
import pytest
import recurring_ical_events
from sqlalchemy import select

from astreinte_ari import cli
from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.calendar_feeds import CalendarFeedStore
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.app.alerting_edges import start_alerting
from astreinte_ari.app.features import LiveConfig
from astreinte_ari.config.loader import load_config
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.conftest import FakeClock
from tests.alerts.helpers import NoTelephonyService, write_config

PARIS = ZoneInfo("Europe/Paris")


def _subscribe(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> tuple[str, str]:
    """(URL, feed id), through the CLI as ops staff would."""
    assert cli.main(["rota", "subscribe", "-c", str(config), "--team", "t", *extra]) == 0
    out, err = capsys.readouterr()
    url = out.strip()
    feed_id = re.search(r"calendar feed (\w+)", err)
    assert feed_id and re.fullmatch(r"http://127\.0\.0\.1:\d+(/astreinte)?/ics/[\w-]{32}\.ics", url)
    return url, feed_id.group(1)


def _who(capsys: pytest.CaptureFixture[str], config: Path, at: datetime) -> set[tuple[str, str]]:
    """(rota, person) on call at `at`, as `astreinte who` says."""
    local = at.astimezone(PARIS).strftime("%Y-%m-%d %H:%M")
    assert cli.main(["who", "-c", str(config), "--at", local, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    return {(r["label"], r["person_id"]) for r in rows if r["label"] in ("primary", "secondary")}


def _on_call(body: bytes, at: datetime) -> set[tuple[str, str]]:
    """(rota, person) of the feed's events covering `at`."""
    cal = icalendar.Calendar.from_ical(body)
    found = set()
    for event in recurring_ical_events.of(cal).at(at):
        person = re.search(r"\((\w+)\)$", str(event["summary"]))
        assert person, event["summary"]
        found.add((str(event["categories"].cats[0]), person.group(1)))
    return found


def _uids(body: bytes) -> list[str]:
    return sorted(str(e["uid"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT"))


async def test_feed_matches_who_updates_and_revokes(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    # public_url with a path: the feed answers under it and at the root (a proxy may strip it)
    config = write_config(
        tmp_path,
        db_url=db_url,
        links_port=port,
        primary="[p1, p3]",
        public_url=f"http://127.0.0.1:{port}/astreinte",
    )
    path = config.source_path
    team_url, team_feed = _subscribe(capsys, path)
    person_url, _ = _subscribe(capsys, path, "--person", "p1")
    live = LiveConfig(config)
    clock = FakeClock()
    alerting = await start_alerting(
        config=config,
        engine=create_db_engine(config.database_url()),
        service=NoTelephonyService(),
        clock=clock,
        paused=True,
        current_config=lambda: live.current,
    )
    assert alerting is not None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(team_url) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
                assert "max-age" in response.headers["Cache-Control"]
                etag = response.headers["ETag"]
                body = await response.read()
            # Same events as `astreinte who`, at instants around handoffs and days apart.
            now = clock()
            instants = [now - timedelta(days=20), now, now + timedelta(days=1, hours=3)]
            instants += [now + timedelta(days=d, hours=h) for d, h in ((100, 7), (300, 9))]
            for at in instants:
                expected = _who(capsys, path, at)
                assert len(expected) == 2 and _on_call(body, at) == expected, at
            # The horizon: a month back, a year ahead; nothing past it.
            assert _on_call(body, now + timedelta(days=400)) == set()

            # Unchanged programme: same bytes, same ETag, 304 when the client has it.
            async with http.get(team_url.replace("/astreinte/", "/")) as response:
                assert response.status == 200 and response.headers["ETag"] == etag
                assert _uids(await response.read()) == _uids(body)
            async with http.get(team_url, headers={"If-None-Match": etag}) as response:
                assert response.status == 304 and await response.read() == b""

            # A person's feed: only their shifts.
            async with http.get(person_url) as response:
                assert response.status == 200
                mine = icalendar.Calendar.from_ical(await response.read()).walk("VEVENT")
            assert mine and all(str(e["summary"]).endswith("(p1)") for e in mine)
            shared = set(_uids(body)) & {str(e["uid"]) for e in mine}
            assert len(shared) == len(mine)  # same UIDs as in the team's feed

            # A YAML edit the service took (the watcher swaps live.current): next fetch.
            edited = path.read_text().replace("people: [p1, p3]", "people: [p3]")
            path.write_text(edited)
            live.current = load_config(path)
            async with http.get(team_url, headers={"If-None-Match": etag}) as response:
                assert response.status == 200 and response.headers["ETag"] != etag
                after = await response.read()
            assert _on_call(after, now + timedelta(days=1, hours=3)) == _who(
                capsys, path, now + timedelta(days=1, hours=3)
            )
            assert ("primary", "p3") in _on_call(after, now)

            # Revoked: the same 404 as a token that never existed.
            assert cli.main(["rota", "unsubscribe", "-c", str(path), team_feed]) == 0
            capsys.readouterr()
            async with http.get(team_url) as response:
                assert response.status == 404
                revoked = await response.text()
            bogus = re.sub(r"/ics/[\w-]+\.ics", "/ics/" + "A" * 32 + ".ics", team_url)
            async with http.get(bogus) as response:
                assert response.status == 404 and await response.text() == revoked
            async with http.get(person_url) as response:  # the other feed still works
                assert response.status == 200
    finally:
        await alerting.close()

    # The list and the trail: who created and revoked which feed; never a token.
    assert cli.main(["rota", "feeds", "-c", str(path), "--all", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["scope"], r["revoked_at"] is not None) for r in rows] == [
        ("team", True),
        ("person", False),
    ]
    assert cli.main(["rota", "feeds", "-c", str(path), "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == "id,scope,team,person,created_at,created_by,revoked_at"
    assert len(csv_lines) == 2 and csv_lines[1].startswith(f"{rows[1]['id']},person,t,p1,")
    assert cli.main(["rota", "feeds", "-c", str(path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["id", "scope", "team", "person", "created", "by", "revoked"]
    assert len(table) == 2 and team_feed not in table[1]
    assert cli.main(["rota", "unsubscribe", "-c", str(path), team_feed]) == 1  # already
    assert "no calendar feed" in capsys.readouterr().err
    engine = create_db_engine(config.database_url())
    try:
        with engine.connect() as conn:
            trail = conn.execute(
                select(
                    audit_log_table.c.kind, audit_log_table.c.subject_id, audit_log_table.c.payload
                )
                .where(audit_log_table.c.kind.like("calendar_feed.%"))
                .order_by(audit_log_table.c.seq)
            ).all()
        assert [(k, s) for k, s, _ in trail] == [
            ("calendar_feed.created", team_feed),
            ("calendar_feed.created", rows[1]["id"]),
            ("calendar_feed.revoked", team_feed),
        ]
        tokens = [u.rsplit("/", 1)[1].removesuffix(".ics") for u in (team_url, person_url)]
        assert not any(t in payload for t in tokens for _, _, payload in trail)
        assert all(len(t) == 32 for t in tokens)
        assert CalendarFeedStore(engine).resolve(tokens[0]) is None  # revoked
    finally:
        engine.dispose()


def test_feed_store_keeps_only_a_hash(tmp_path: Path) -> None:
    from astreinte_ari.adapters.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'feeds.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    try:
        store = CalendarFeedStore(engine)
        feed, token = store.create(team="t", person=None, by="ops", now=datetime.now(UTC))
        raw = (tmp_path / "feeds.db").read_bytes()
        assert token.encode() not in raw
        assert store.resolve(token) == feed
        for hostile in ("", token + "x", token[:-1] + "'", "../" + token[3:], token.upper()):
            assert store.resolve(hostile) is None or hostile == token
        assert store.revoke(feed.id, by="ops", now=datetime.now(UTC)) is not None
        assert store.revoke(feed.id, by="ops", now=datetime.now(UTC)) is None
        assert store.resolve(token) is None
    finally:
        engine.dispose()
