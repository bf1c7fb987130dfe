"""pytest plugin: audit databases on SQLite and on a private PostgreSQL server.

`db_url` runs each test once per backend with a fresh, migrated database, so
the same assertions hold on both. PostgreSQL is never skipped: a machine
without its binaries fails the tests (CI installs them).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pytest

from astreinte_ari.adapters.store.migrate import upgrade
from tests.rig.postgres import create_database, drop_database, running_postgres

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the `astreinte` database on a server shared by the whole session."""
    with running_postgres(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def blank_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty (never migrated) database on each backend."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "audit.db"
        sqlite3.connect(path).close()  # exists but empty, like a new PostgreSQL database
        yield f"sqlite:///{path}"
        return
    server_url: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)


@pytest.fixture
def db_url(blank_db_url: str) -> str:
    """A fresh database on each backend, migrated to the head revision."""
    upgrade(blank_db_url)
    return blank_db_url
