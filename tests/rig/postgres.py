"""A private, throw-away PostgreSQL server for tests (Debian's `postgresql` package).

`running_postgres(tmp_dir)` runs initdb into a fresh directory, starts the
server on a free loopback port with its unix socket inside that directory,
creates the database `astreinte` and yields its SQLAlchemy URL. On exit it
stops the server (`pg_ctl stop -m fast`) and removes the directory.

PostgreSQL refuses to run as root: when we are root, every server command runs
as the `postgres` system user (`runuser -u postgres --`), which owns the dir.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

PG_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT = 30.0
SUPERUSER = "postgres"
DATABASE = "astreinte"


class PostgresRigError(RuntimeError):
    """The test PostgreSQL server could not be set up."""


def pg_bindir() -> Path:
    """The bin/ directory of the highest PostgreSQL version installed."""
    versions = []
    if PG_ROOT.is_dir():
        for child in PG_ROOT.iterdir():
            if re.fullmatch(r"\d+(\.\d+)?", child.name) and (child / "bin" / "initdb").exists():
                versions.append((tuple(int(p) for p in child.name.split(".")), child / "bin"))
    if not versions:
        raise PostgresRigError(
            f"no PostgreSQL server binaries under {PG_ROOT}/<version>/bin: "
            "install them with `apt-get install postgresql` (see scripts/install-test-deps.sh)"
        )
    return max(versions)[1]


def _as_server_user() -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise PostgresRigError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
        )


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _base_dir(tmp_dir: Path) -> Path:
    """A new directory the server user can reach (pytest's tmp dirs are root-only 0700)."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    parent: Path | None = tmp_dir
    if os.geteuid() == 0:
        probe = subprocess.run([*_as_server_user(), "test", "-w", str(tmp_dir)], check=False)
        if probe.returncode != 0:
            parent = None  # fall back to the system temp dir (sticky, world-writable)
    base = Path(tempfile.mkdtemp(prefix="astreinte-pg-", dir=parent))
    if os.geteuid() == 0:
        shutil.chown(base, user=SUPERUSER, group=None)
        os.chmod(base, 0o700)
    return base


def _connect(port: int, dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=port,
        user=SUPERUSER,
        dbname=dbname,
        autocommit=True,
        connect_timeout=2,
    )


def _wait_ready(port: int, log_file: Path, data: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with _connect(port, "postgres"):
                return
        except psycopg.OperationalError as exc:
            last_error = exc
        time.sleep(0.1)
    raise PostgresRigError(
        f"PostgreSQL in {data} did not accept connections on 127.0.0.1:{port} within "
        f"{START_TIMEOUT:.0f} s (last error: {last_error}).\nLog tail ({log_file}):\n"
        f"{_tail(log_file)}"
    )


def _stop(bindir: Path, data: Path) -> None:
    """pg_ctl stop -m fast; kill the postmaster by its PID if that did not work."""
    if not (data / "postmaster.pid").exists():
        return
    proc = subprocess.run(
        [*_as_server_user(), str(bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "fast", "-w"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0 and (data / "postmaster.pid").exists():
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 9)


def create_database(server_url: str, name: str) -> str:
    """Create database `name` on the rig server; returns its URL."""
    from sqlalchemy import make_url

    url = make_url(server_url)
    with _connect(int(url.port or 5432), "postgres") as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is test-generated, not user input
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import make_url

    url = make_url(server_url)
    with _connect(int(url.port or 5432), "postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclasses.dataclass
class PostgresHandle:
    """A running rig server; a test may stop and start it again (outage tests)."""

    url: str
    bindir: Path
    data: Path
    log_file: Path
    options: str

    @property
    def port(self) -> int:
        return int(self.options.split()[1])

    def stop(self) -> None:
        _stop(self.bindir, self.data)

    def start(self) -> None:
        start = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_file)]
        _run([*_as_server_user(), *start, "-o", self.options, "-W", "start"], "pg_ctl start")
        _wait_ready(self.port, self.log_file, self.data)


@contextlib.contextmanager
def stoppable_postgres(tmp_dir: Path) -> Iterator[PostgresHandle]:
    """Run a private PostgreSQL server with an `astreinte` database."""
    bindir = pg_bindir()
    base = _base_dir(tmp_dir)
    data, sockets, log_file = base / "data", base / "sock", base / "server.log"
    try:
        for path in (data, sockets):
            path.mkdir()
            if os.geteuid() == 0:
                shutil.chown(path, user=SUPERUSER)
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust"]
        _run([*_as_server_user(), *initdb, "-E", "UTF8", "--no-locale"], "initdb")
        port = _free_port()
        # Durability is pointless for a throw-away test server: trade it for speed.
        options = (
            f"-p {port} -h 127.0.0.1 -k {sockets} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
        handle = PostgresHandle(url, bindir, data, log_file, options)
        try:
            handle.start()
            with _connect(port, "postgres") as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            yield handle
        finally:
            handle.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def running_postgres(tmp_dir: Path) -> Iterator[str]:
    """Run a private PostgreSQL server; yields the URL of its `astreinte` database."""
    with stoppable_postgres(tmp_dir) as handle:
        yield handle.url
