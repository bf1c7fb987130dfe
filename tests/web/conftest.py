"""A web planning on a real listener and a migrated SQLite file, with two teams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.http.web_changes import ChangeHandlers
from astreinte_ari.adapters.http.web_feeds import FeedHandlers
from astreinte_ari.adapters.http.web_server import WebServer
from astreinte_ari.adapters.store.calendar_feeds import CalendarFeedStore
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.rota_changes import RotaChangeStore
from astreinte_ari.adapters.store.web_sessions import SqlWebStore
from astreinte_ari.app.rota_changes import ChangeOverlay, RotaChanges, overrides_by_team
from astreinte_ari.config.loader import load_config
from astreinte_ari.web.signin import SignInDesk

WEB_YAML = """
timezone: Europe/Paris
language: fr
ari: {{url: "http://127.0.0.1:8088", username: astreinte}}
database: {{url: "{db}"}}
trunk: {{dial: "PJSIP/{{number}}@op", caller_id: "+33180000000", allowed_prefixes: ["+336"]}}
web: {{listen: "127.0.0.1:0", public_url: "{public}", admins: [root], auditors: [audrey]}}
lines:
  "+33180000001":
    name: Maintenance <usine>
    team: maint
    after_hours:
      hops: [{{rota: primary, timeout: 20}}, {{person: sup, timeout: 25}}]
      finally: voicemail
  "+33180000002":
    name: Informatique
    team: info
    after_hours:
      hops: [{{rota: primary, timeout: 15}}]
      finally: voicemail
teams:
  maint:
    managers: [sup]
    labour: {{notice: {{days: 7, level: error}}}}
    people:
      alice: {{name: Alice <b>Martin</b>, mobile: "+33612345678", email: alice@example.test}}
      bob: {{name: Bob Durand, mobile: "+33612345679", email: bob@example.test}}
      sup: {{name: Sam Chef, mobile: "+33612345670", email: sup@example.test}}
      audrey: {{name: Audrey Audit, mobile: "+33612345600", email: audrey@example.test}}
    rotas:
      primary: {{every: week, handoff: "mon 09:00", start: 2026-01-05, people: [alice, bob]}}
    overrides:
      - {{rota: primary, person: sup, from: "2026-12-24 18:00", to: "2026-12-26 08:00",
          reason: "Noël <3", requested_by: alice}}
  info:
    people:
      karim: {{name: Karim Haddad, mobile: "+33612345601", email: karim@example.test}}
      root: {{name: Root Admin, mobile: "+33612345602", email: root@example.test}}
    rotas:
      primary: {{every: week, handoff: "mon 09:00", start: 2026-01-05, people: [karim]}}
"""


def write_config(tmp_path: Path, public: str = "http://127.0.0.1:0") -> Path:
    db = f"sqlite:///{tmp_path / 'web.db'}"
    path = tmp_path / "astreinte.yaml"
    path.write_text(WEB_YAML.format(db=db, public=public))
    upgrade(db)
    return path


@dataclass
class RecordingSender:
    """Keeps the links instead of mailing them (the e2e test mails them for real)."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send_login_link(
        self, person_id: str, via: str, url: str, language: str, minutes: int
    ) -> None:
        self.sent.append((person_id, via, url))


@dataclass
class Site:
    server: WebServer
    desk: SignInDesk
    sender: RecordingSender
    overlay: ChangeOverlay  # the configuration in force: the YAML + approved changes
    base: str
    clock: Callable[[], datetime]
    now: list[datetime]


@asynccontextmanager
async def open_site(tmp_path: Path, extra_yaml: str = "") -> AsyncIterator[Site]:
    """The site of WEB_YAML (+ `extra_yaml`, e.g. an `alerting:` block), with the change
    pages and the calendar subscriptions, on a free port."""
    path = write_config(tmp_path)
    if extra_yaml:
        path.write_text(path.read_text() + extra_yaml)
    config = load_config(path)
    engine = create_db_engine(config.database_url())
    now = [datetime(2026, 12, 1, 10, 0, tzinfo=UTC)]

    def clock() -> datetime:
        return now[0]

    sender = RecordingSender()
    overlay = ChangeOverlay(config)
    store = RotaChangeStore(engine)
    changes = RotaChanges(
        store, lambda: overlay.yaml, clock,
        on_approved=lambda: overlay.use_changes(overrides_by_team(store.list(status="approved"))),
    )  # fmt: skip
    desk = SignInDesk(SqlWebStore(engine), sender, lambda: overlay.current, clock)
    server = WebServer(desk, lambda: overlay.current, clock)
    ChangeHandlers(server, changes)
    FeedHandlers(server, CalendarFeedStore(engine))
    await server.start("127.0.0.1", 0)
    try:
        yield Site(server, desk, sender, overlay, f"http://127.0.0.1:{server.port}", clock, now)
    finally:
        await server.close()
        engine.dispose()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path) as opened:
        yield opened
