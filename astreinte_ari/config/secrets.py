"""Secrets come from the environment or from files, never from the YAML itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretError(Exception):
    """A secret that is needed but cannot be found or read."""


def read_secret_file(path: Path) -> str:
    """File content without the trailing newline editors add."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
    if not value:
        raise SecretError(f"secret file {path} is empty")
    return value


def resolve_secret(env_name: str | None, file: Path | None, *, what: str) -> str:
    """The environment wins (containers, systemd credentials), then the file."""
    if env_name:
        value = os.environ.get(env_name, "")
        if value:
            return value
    if file is not None:
        return read_secret_file(file)
    where = f"environment variable {env_name}" if env_name else "no environment variable"
    raise SecretError(f"{what} not found: set {where} or give a password_file")


def is_world_readable(path: Path) -> bool:
    """True when any local user may read the file (worth a warning, not an error)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IROTH)
