"""`astreinte web login-link PERSON`: a link that signs that person in, once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari import cli
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.web_sessions import SqlWebStore
from astreinte_ari.config.loader import load_config
from astreinte_ari.web.signin import Session, SignInDesk
from tests.web.conftest import write_config


async def test_printed_link_signs_in_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, public="https://astreinte.example.test/planning")
    assert cli.main(["web", "login-link", "karim", "-c", str(path)]) == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://astreinte.example.test/planning/login/")
    config = load_config(path)
    engine = create_db_engine(config.database_url())
    desk = SignInDesk(SqlWebStore(engine), None, lambda: config, lambda: datetime.now(UTC))
    try:
        first = await desk.sign_in(link.rsplit("/", 1)[1])
        assert isinstance(first, Session) and first.viewer.person_id == "karim"
        assert first.viewer.admin is False and first.viewer.agent_of == {"info"}
        assert await desk.sign_in(link.rsplit("/", 1)[1]) == "used"
    finally:
        engine.dispose()
    assert cli.main(["web", "login-link", "nobody", "-c", str(path)]) == 1


def test_unknown_admin_is_refused_with_its_line(tmp_path: Path) -> None:
    from astreinte_ari.config.loader import ConfigError

    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("admins: [root]", "admins: [rooot]"))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert any("web.admins[0]: unknown person 'rooot'" in str(i) for i in refused.value.issues)


def test_committed_openapi_is_the_served_one() -> None:
    import json

    from astreinte_ari.web.api import openapi

    committed = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
    served = openapi("https://astreinte.example.fr", "see /api/v1/openapi.json")
    assert committed == served, "regenerate docs/openapi.json (docs/web.md says how)"
    for path, item in served["paths"].items():
        for operation in item.values():
            for response in operation["responses"].values():
                ref = response["content"]["application/json"]["schema"].get("$ref", "")
                assert not ref or ref.rsplit("/", 1)[1] in served["components"]["schemas"], path


def test_api_token_command_prints_a_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    assert cli.main(["web", "api-token", "sup", "--label", "grafana", "-c", str(path)]) == 0
    token = capsys.readouterr().out.strip()
    config = load_config(path)
    engine = create_db_engine(config.database_url())
    store = SqlWebStore(engine)
    try:
        from astreinte_ari.web.auth import token_hash

        found = store.api_token(token_hash(token), datetime.now(UTC))
        assert found is not None and found.person_id == "sup"
        assert cli.main(["web", "api-token", "sup", "--revoke", "-c", str(path)]) == 0
        assert store.api_token(token_hash(token), datetime.now(UTC)) is None
    finally:
        engine.dispose()


async def test_behind_an_https_proxy_the_cookie_is_secure_and_scoped(tmp_path: Path) -> None:
    import aiohttp

    from astreinte_ari.adapters.http.web_server import WebServer

    path = write_config(tmp_path, public="https://astreinte.example.test/planning")
    config = load_config(path)
    engine = create_db_engine(config.database_url())
    desk = SignInDesk(SqlWebStore(engine), None, lambda: config, lambda: datetime.now(UTC))
    server = WebServer(desk, lambda: config, lambda: datetime.now(UTC))
    await server.start("127.0.0.1", 0)
    try:
        token = desk.issue_link("alice", "cli").rsplit("/", 1)[1]
        base = f"http://127.0.0.1:{server.port}"
        origin = {"Origin": "https://astreinte.example.test"}  # the proxy forwards the prefix
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/planning/login/{token}", headers=origin, allow_redirects=False
            ) as resp,
        ):
            assert resp.status == 303 and resp.headers["Location"] == "/planning/"
            cookie = resp.cookies["astreinte_session"]
            assert cookie["secure"] and cookie["path"] == "/planning" and cookie["httponly"]
            assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    finally:
        await server.close()
        engine.dispose()
