"""What every `astreinte` command is handed: one CliContext, built by main().

It reads the configuration named by -c (or $ASTREINTE_CONFIG) at most once per
run, and gives it out in the two ways commands need it:

- whole (`config`, `whole_config`): validated down to its rotas, or refused with
  every problem listed. Commands that need people, rotas, rates or the PBX (check,
  who, rota, statement, retention, shifts, doctor, run).
- lenient (`lenient_config`): commands that only read or write the audit database
  (calls, audit, report, alerts list/ack, db) use what they can from a file with
  errors: the service keeps running on its last good configuration, and a rota
  typo must not lock auditors out of the trail. They warn on stderr and carry on.

From it come the database URL (--url first), the audit database opened for
reading, and the zone times are shown in.

A command ends early by raising CommandExit, which main() prints. Each family of
commands words a configuration it cannot use as it always has (operators and
scripts read these words): the wordings stand here side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loader and SQLAlchemy are heavy: imported when a command reads them
    from sqlalchemy import Engine

    from astreinte_ari.config.lenient import LenientConfig
    from astreinte_ari.config.loader import ConfigError, ConfigIssue
    from astreinte_ari.config.model import AppConfig

CONFIG_ENV = "ASTREINTE_CONFIG"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CommandExit(Exception):
    """Ends a command: `out` lines on stdout, then `err` (when given) on stderr, and
    the exit status `code`. main() prints it, so a helper deep inside a command can
    stop it with the command's own words."""

    def __init__(self, code: int, err: str = "", out: Sequence[str] = ()) -> None:
        super().__init__(err or "\n".join(out))
        self.code, self.err, self.out = code, err, tuple(out)


def usage_error(message: str) -> CommandExit:
    """A bad command line: exit 2."""
    return CommandExit(EXIT_USAGE, f"astreinte: {message}")


def failure(message: str) -> CommandExit:
    """The command could not do its job: exit 1."""
    return CommandExit(EXIT_FAILURE, f"astreinte: {message}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """How a family of commands that needs the whole configuration says it has none:
    every problem on stdout, then `summary` ({count}, {s}, {path}) on stderr, or on
    stdout too where `to_stdout` (the service's start, read in its journal)."""

    missing: str  # neither -c nor $ASTREINTE_CONFIG: exit 2
    summary: str
    to_stdout: bool = False

    def no_file(self) -> CommandExit:
        if self.to_stdout:
            return CommandExit(EXIT_USAGE, out=[self.missing])
        return CommandExit(EXIT_USAGE, self.missing)

    def refused(self, path: str, issues: Sequence[ConfigIssue]) -> CommandExit:
        count = len(issues)
        summary = self.summary.format(count=count, s="s" * (count != 1), path=path)
        problems = [str(issue) for issue in issues]
        if self.to_stdout:
            return CommandExit(EXIT_FAILURE, out=[*problems, summary])
        return CommandExit(EXIT_FAILURE, summary, out=problems)


_NO_FILE = f"error: no configuration file: give -c FILE or set {CONFIG_ENV}"
# check, who, rota: the configuration commands for ops staff.
CHECKING = Refusal(_NO_FILE, "{count} problem{s} found; configuration refused.")
# doctor, fallback import.
OPERATING = Refusal(_NO_FILE, "{count} problem(s) in {path}; fix them first.")
# run: both lines land in the service's journal.
STARTING = Refusal(
    f"astreinte run: no configuration: give -c FILE or set {CONFIG_ENV}",
    "astreinte run: {count} error(s) in {path}; not started",
    to_stdout=True,
)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """-c FILE, as the configuration commands (check, who, rota) spell it."""
    parser.add_argument(
        "-c", "--config", metavar="FILE", help=f"configuration file (default: ${CONFIG_ENV})"
    )


def _refused(path: object, error: ConfigError, why: str) -> CommandExit:
    """The database commands' refusal: one message, every problem under it."""
    count = len(error.issues)
    return failure(
        f"configuration {path} refused ({count} problem{'s' * (count != 1)}); {why}:\n{error}"
    )


class CliContext:
    """The configuration, the audit database and the display zone of one command run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # The file named by -c, else by the environment; None: no configuration.
        self.path: str | None = getattr(args, "config", None) or os.environ.get(CONFIG_ENV) or None
        self._checked: AppConfig | None = None
        self._error: ConfigError | None = None  # why the whole file was refused
        self._lenient: LenientConfig | None = None

    @property
    def issues(self) -> tuple[ConfigIssue, ...]:
        """The problems that made the whole configuration refused, once it was read."""
        return () if self._error is None else tuple(self._error.issues)

    def _read(self, path: str) -> AppConfig:
        """The file validated down to its rotas, read once; ConfigError if refused."""
        from astreinte_ari.config.loader import ConfigError
        from astreinte_ari.schedule.validate import load_checked_config

        if self._error is not None:
            raise ConfigError(self._error.issues)
        if self._checked is None:
            try:
                self._checked = load_checked_config(path)
            except ConfigError as exc:
                self._error = exc
                raise
        return self._checked

    def config(self, refusal: Refusal) -> AppConfig:
        """The whole configuration, or a CommandExit worded as `refusal`."""
        from astreinte_ari.config.loader import ConfigError

        if self.path is None:
            raise refusal.no_file()
        try:
            return self._read(self.path)
        except ConfigError as exc:
            raise refusal.refused(self.path, exc.issues) from None

    def whole_config(self, command: str) -> AppConfig | None:
        """For a database command that needs all of the file (`command` says why):
        None without a configuration; refused with every problem if it has errors."""
        from astreinte_ari.config.loader import ConfigError

        if self.path is None:
            return None
        try:
            return self._read(self.path)
        except ConfigError as exc:
            raise _refused(self.path, exc, f"{command} needs all of it") from None

    def lenient_config(self) -> AppConfig | LenientConfig | None:
        """The whole configuration or, when the file has errors, a LenientConfig with
        what a database command needs (database URL, time zone, audit keys), after a
        warning on stderr. None without a configuration."""
        from astreinte_ari.config.lenient import read_lenient
        from astreinte_ari.config.loader import ConfigError

        if self.path is None:
            return None
        if self._lenient is not None:
            return self._lenient
        try:
            return self._read(self.path)
        except ConfigError as exc:
            try:
                lenient = read_lenient(self.path, exc.issues)
            except ConfigError:  # not even readable: nothing to go on
                raise _refused(self.path, exc, "it cannot be read") from None
        _warn(self.path, lenient)
        self._lenient = lenient
        return lenient

    def database_url(self) -> str:
        """--url, else the configuration's database (as the service resolves it)."""
        from astreinte_ari.config.loader import ConfigError

        url = getattr(self.args, "url", None)
        if url:
            return str(url)
        config = self.lenient_config()
        if config is None:
            raise usage_error(
                f"no database given: use --url URL or -c CONFIG (or set {CONFIG_ENV})"
            )
        try:
            return str(config.database_url())
        except ConfigError as exc:
            raise _refused(config.source_path, exc, "its database cannot be read") from None

    def display_zone(self) -> tzinfo | None:
        """Times are shown in the configuration's time zone (the service's, whatever the
        server's own zone, often UTC); without a configuration, in the machine's zone."""
        from zoneinfo import ZoneInfo

        try:
            config = self.lenient_config()
        except CommandExit:  # the database came from --url; keep the machine's zone
            return None
        return None if config is None or not config.timezone else ZoneInfo(config.timezone)

    def open_database(self, url: str) -> Engine:
        """The audit database at `url`, at the current schema: never created here (a
        read must not leave an empty SQLite file behind)."""
        from astreinte_ari.adapters.store.migrate import create_db_engine, ensure_migrated

        self.require_database_file(url)
        engine = create_db_engine(url)
        try:
            ensure_migrated(engine, config_path=self.path)
        except Exception:
            engine.dispose()
            raise
        return engine

    def require_database_file(self, url: str) -> None:
        """Read-only commands must not create an empty SQLite file as a side effect."""
        from astreinte_ari.adapters.store.migrate import sqlite_file

        path = sqlite_file(url)
        if path is not None and not path.exists():
            fix = f"astreinte db upgrade -c {self.path or '<config>'}"
            raise failure(f"no database file at {path}; create it with: {fix}")


def _warn(path: str, config: LenientConfig) -> None:
    from astreinte_ari.adapters.store.migrate import mask_url
    from astreinte_ari.config.loader import ConfigError
    from astreinte_ari.config.secrets import SecretError

    count = len(config.issues)
    zone = config.timezone or "not readable"
    try:  # named, so that a database read from a broken file is seen
        database = mask_url(config.database_url())
    except (ConfigError, SecretError):
        database = "not readable"
    print(
        f"astreinte: warning: {path} has {count} problem{'s' * (count != 1)} (listed by "
        f"`astreinte check -c {path}`); the service keeps its last good configuration. "
        f"This command only needs the database and the time zone, read from the file as it "
        f"is: database {database}, time zone {zone}.",
        file=sys.stderr,
    )
