"""Database engines and schema migrations (Alembic, run programmatically).

The service never creates tables on its own: it refuses to start on a database
that is not at the head revision (`ensure_migrated`) and says which command to
run, so that schema changes are always an explicit operator step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from astreinte_ari import resources
from astreinte_ari.extras import require

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = resources.migrations_dir()
# The newest migration. The service checks the database against it with one
# query, without importing Alembic (Alembic + Mako + Pygments are ~11 MB of the
# service's memory); a unit test keeps it equal to Alembic's own head.
SCHEMA_HEAD = "0013"


class DatabaseNotMigrated(Exception):
    """The database schema is not the one this version of the code needs."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain `postgresql://` means the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL as it may appear in logs and messages: password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL may still hold a secret: show nothing of it
        return "<unparsable database URL>"


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a file-backed SQLite URL; None for other databases and in-memory."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def create_db_engine(url: str | URL, *, sqlite_busy_timeout: float = 5.0) -> Engine:
    """An Engine for the audit database (SQLite file or PostgreSQL via psycopg 3).

    SQLite: the parent directory is created, WAL is enabled (readers such as
    `astreinte calls list` do not block the writer) and foreign keys enforced.
    """
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        # The writer thread and the event loop share the engine.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": sqlite_busy_timeout}
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            kwargs["poolclass"] = StaticPool  # one connection, or each thread sees its own DB
        path = sqlite_file(parsed)
        if path is not None:
            path.resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if parsed.drivername == "postgresql+psycopg":  # say which extra, not just "No module"
        require("psycopg", "postgres", f"the database {mask_url(parsed)}")
    return create_engine(parsed, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, far fewer fsyncs
        # Let big report sorts (GROUP BY over millions of hops) use a second core.
        cursor.execute("PRAGMA threads=2")
    finally:
        cursor.close()


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revisions() -> frozenset[str]:
    """The revisions this version of the code needs (several while branches are open)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    if not heads:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return frozenset(heads)


def head_revision() -> str:
    """The revision(s) this version of the code needs, as one string."""
    return "+".join(sorted(head_revisions()))


def current_revisions(engine: Engine) -> frozenset[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def _stored_revisions(engine: Engine) -> set[str]:
    try:
        with engine.connect() as conn:
            return {str(v) for v in conn.scalars(text("SELECT version_num FROM alembic_version"))}
    except DBAPIError:  # no such table: never migrated (Alembic's path says so clearly)
        return set()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty (never migrated) database."""
    heads = current_revisions(engine)
    return "+".join(sorted(heads)) if heads else None


def upgrade(url: str) -> str:
    """Bring the database to the head revision; returns the revision it is now at."""
    from alembic import command

    engine = create_db_engine(url)
    try:
        cfg = _alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if revision is None:
        raise RuntimeError(f"upgrade of {mask_url(url)} left no revision")
    return revision


def ensure_migrated(engine: Engine, *, config_path: str | None = None) -> None:
    """Raise DatabaseNotMigrated unless the database is at the head revision."""
    if _stored_revisions(engine) == {SCHEMA_HEAD}:
        return  # the common case, answered without Alembic
    from alembic.script import ScriptDirectory

    if current_revisions(engine) == head_revisions():
        return
    current = current_revision(engine)
    head = head_revision()
    where = mask_url(engine.url)
    fix = f"astreinte db upgrade -c {config_path or '<config>'}"
    known = {
        rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    if current is None:
        state = "has no audit schema yet (never migrated)"
    elif set(current.split("+")) <= known:
        state = f"is at schema revision {current}"
    else:
        # A newer release migrated it; upgrading this one cannot help.
        raise DatabaseNotMigrated(
            f"database {where} is at schema revision {current}, which this version of "
            f"astreinte does not know (it needs {head}); it was migrated by a newer "
            "release: run that release, or restore a matching backup"
        )
    raise DatabaseNotMigrated(
        f"database {where} {state}; this version of astreinte needs revision {head}. Run: {fix}"
    )
