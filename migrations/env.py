"""Alembic environment for the astreinte audit trail.

Two ways in:
- programmatically (`astreinte db upgrade`, tests): `astreinte_ari.adapters.store.migrate`
  passes an open connection in `config.attributes["connection"]`;
- the `alembic` command line from the repo top level: the URL comes from
  `-x url=...` or the ASTREINTE_DATABASE_URL environment variable.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from astreinte_ari.adapters.store.models import metadata

config = context.config
target_metadata = metadata

# Only configure logging from alembic.ini when run as the `alembic` command:
# inside the service the application owns the logging setup.
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "ASTREINTE_DATABASE_URL"
    )
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set ASTREINTE_DATABASE_URL")
    return url


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`) without a database."""
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: object) -> None:
    # render_as_batch: SQLite can only alter tables by copying them.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    from astreinte_ari.adapters.store.migrate import create_db_engine

    engine = create_db_engine(_url())
    try:
        with engine.begin() as conn:
            _run_with(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
