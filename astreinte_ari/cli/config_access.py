"""The configuration as each command needs it.

Commands that only read or write the audit database (calls, audit, report,
alerts list/ack, db) use what they can from a file with errors: the service
keeps running on its last good configuration, and a rota typo must not lock
auditors out of the trail. They warn on stderr and carry on. Commands that need
the whole configuration (who, rota, statement, retention, shifts, run) refuse
it and list every problem.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from astreinte_ari.config.loader import ConfigError

CONFIG_ENV = "ASTREINTE_CONFIG"


class ConfigRefused(Exception):
    """The configuration cannot serve this command; the message lists why."""


def config_path(args: argparse.Namespace) -> str | None:
    return getattr(args, "config", None) or os.environ.get(CONFIG_ENV) or None


def _refusal(path: str, exc: ConfigError, why: str) -> ConfigRefused:
    count = len(exc.issues)
    return ConfigRefused(
        f"configuration {path} refused ({count} problem{'s' * (count != 1)}); {why}:\n{exc}"
    )


def load_whole(args: argparse.Namespace, command: str) -> Any:
    """The validated AppConfig (None without -c or $ASTREINTE_CONFIG)."""
    path = config_path(args)
    if path is None:
        return None
    cached = getattr(args, "_config", None)
    if cached is not None and getattr(args, "_config_whole", False):
        return cached
    from astreinte_ari.schedule.validate import load_checked_config  # lazily: heavy

    try:
        config = load_checked_config(path)
    except ConfigError as exc:
        raise _refusal(path, exc, f"{command} needs all of it") from None
    args._config, args._config_whole = config, True
    return config


def load_for_database(args: argparse.Namespace) -> Any:
    """The AppConfig, or, if the file has errors, a LenientConfig with what a
    database command needs (database URL, time zone, export key), after a warning
    on stderr. None without a configuration."""
    path = config_path(args)
    if path is None:
        return None
    cached = getattr(args, "_config", None)
    if cached is not None:
        return cached
    from astreinte_ari.config.lenient import read_lenient
    from astreinte_ari.schedule.validate import load_checked_config

    try:
        config: Any = load_checked_config(path)
        args._config_whole = True
    except ConfigError as exc:
        try:
            config = read_lenient(path, exc.issues)
        except ConfigError:  # not even readable: nothing to go on
            raise _refusal(path, exc, "it cannot be read") from None
        _warn(path, config)
    args._config = config
    return config


def _warn(path: str, config: Any) -> None:
    from astreinte_ari.adapters.store.migrate import mask_url

    count = len(config.issues)
    zone = config.timezone or "not readable"
    from astreinte_ari.config.secrets import SecretError

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


def database_url(config: Any) -> str:
    """config.database_url(), a refusal if the broken file hides the database."""
    try:
        return str(config.database_url())
    except ConfigError as exc:
        raise _refusal(str(config.source_path), exc, "its database cannot be read") from None
