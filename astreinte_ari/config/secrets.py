"""Secrets come from the environment or from files, never from the YAML itself."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class ExposedSecret:
    """A secret file any local user can read: refused, since the ARI login is
    PBX-admin. `check` prints it whole; `doctor` shows the problem and its fix apart."""

    setting: str  # where the YAML names the file, e.g. "ari.password_file"
    path: Path

    @property
    def problem(self) -> str:
        return f"{self.setting} {self.path} is readable by every user of this machine"

    @property
    def fix(self) -> str:
        return f"chmod 600 {self.path}"

    def __str__(self) -> str:
        return f"{self.problem}; run: {self.fix}"


def exposed_secrets(files: Iterable[tuple[str, Path | None]]) -> list[ExposedSecret]:
    """The (setting, file) pairs whose file is world-readable; None: no file set."""
    return [
        ExposedSecret(setting, path)
        for setting, path in files
        if path is not None and is_world_readable(path)
    ]
