"""What the commands that only read the audit database can still use from a
configuration file that has errors.

The running service keeps its last good configuration while the file on disk is
broken (a rota typo); auditors must not lose the trail meanwhile. Those commands
need only the database, the time zone and the export key: each top-level section
is read on its own (a syntax error elsewhere does not matter) and used only if it
is valid by itself and no reported problem touches it. A section that is absent
and untouched gets its default, exactly as the service would.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from astreinte_ari.config.fieldnames import valid_names
from astreinte_ari.config.fields import check_timezone
from astreinte_ari.config.loader import ConfigError, ConfigIssue, parse_yaml
from astreinte_ari.config.model import AppConfig, DatabaseConfig
from astreinte_ari.config.references import prepare_raw
from astreinte_ari.config.reporting import AuditConfig

DATABASE_ENV = "ASTREINTE_DATABASE_URL"  # as AppConfig.database_url reads it
_TOP_KEY_RE = re.compile(r"""^(?:"([^"]*)"|'([^']*)'|([^\s#:'"-][^:#]*?))\s*:(?:\s|$)""")


class _Unreadable:
    """A section that is present (or may be) but cannot be trusted."""


UNREADABLE = _Unreadable()


@dataclass(frozen=True, slots=True)
class LenientConfig:
    source_path: Path
    issues: tuple[ConfigIssue, ...]  # why the file as a whole is refused
    timezone: str | None  # None: missing or not readable
    audit: AuditConfig | None  # None: not readable
    database: DatabaseConfig | _Unreadable
    language: str | None = None  # documents for people; None: missing or not readable

    @property
    def base_dir(self) -> Path:
        """Where relative paths in the file start (as AppConfig.base_dir)."""
        return self.source_path.resolve().parent

    def database_url(self) -> str:
        """The same resolution as the service (environment first), from what is readable."""
        if isinstance(self.database, _Unreadable):
            if os.environ.get(DATABASE_ENV, "").strip():
                return os.environ[DATABASE_ENV].strip()
            raise ConfigError(
                [
                    *self.issues,
                    ConfigIssue(
                        str(self.source_path), None, "database", "not readable on its own "
                        f"while the file has errors: fix them, give --url or set {DATABASE_ENV}",
                    ),
                ]
            )  # fmt: skip
        settings = AppConfig.model_construct(source_path=self.source_path, database=self.database)
        return settings.database_url()


def _touched(section: str, issues: Sequence[ConfigIssue]) -> bool:
    """A reported problem is in this section, or may have moved it (a misspelt
    or mis-indented key): then its content cannot be trusted."""
    for issue in issues:
        segments = re.split(r"[.\[\]]+", issue.path.replace('"', ""))
        if segments[0] == section or f"did you mean '{section}'" in issue.message:
            return True
        if section in segments and issue.message.startswith("unknown field"):
            return True  # e.g. trunk.database: indented under the wrong block
    return False


def _sections(text: str, file: str) -> tuple[dict[str, Any], set[str]]:
    """(top-level sections that parse, names of those that do not). The whole file
    first; if it does not parse, each top-level block on its own. Only a file
    read whole, or whose every block has a known name, can be trusted to lack a
    section: otherwise its name "" is among the broken ones."""
    data, root, _ = parse_yaml(text, file)
    if root is not None and isinstance(data, Mapping) and data:
        return {str(k): v for k, v in data.items()}, set()
    sections: dict[str, Any] = {}
    broken: set[str] = set()
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        m = _TOP_KEY_RE.match(line)
        if m:
            blocks.append((next(g for g in m.groups() if g is not None), [line]))
        elif blocks:
            blocks[-1][1].append(line)
    for name, lines in blocks:
        data, root, _ = parse_yaml("\n".join(lines) + "\n", file)
        if root is not None and isinstance(data, Mapping) and list(data) == [name]:
            sections[name] = data[name]
        else:
            broken.add(name)
    known = set(valid_names(AppConfig, ()))
    if not blocks or any(name not in known for name, _ in blocks):
        broken.add("")  # empty, or a misspelt key that may be the missing section
    return sections, broken


def _section(name: str, sections: Mapping[str, Any], broken: set[str],
             issues: Sequence[ConfigIssue]) -> Any:  # fmt: skip
    if name in broken or _touched(name, issues) or (name not in sections and "" in broken):
        return UNREADABLE
    return sections.get(name)


def read_lenient(path: str | Path, issues: Sequence[ConfigIssue]) -> LenientConfig:
    """The readable parts of a file load_config refused with `issues`."""
    source = Path(path).absolute()
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ConfigError(issues) from None
    sections, broken = _sections(text, str(path))

    zone = _section("timezone", sections, broken, issues)
    try:
        timezone = check_timezone(zone) if isinstance(zone, str) else None
    except ValueError:
        timezone = None

    raw_db = _section("database", sections, broken, issues)
    database: DatabaseConfig | _Unreadable = UNREADABLE
    if not isinstance(raw_db, _Unreadable):
        prepared = prepare_raw({"source_path": source, "database": raw_db or {}})
        with contextlib.suppress(ValidationError):
            database = DatabaseConfig.model_validate(prepared["database"])

    raw_audit = _section("audit", sections, broken, issues)
    audit: AuditConfig | None = None
    if not isinstance(raw_audit, _Unreadable):
        with contextlib.suppress(ValidationError):
            audit = AuditConfig.model_validate(raw_audit or {})
    language = _section("language", sections, broken, issues)
    if language not in ("fr", "en"):
        language = None
    return LenientConfig(source, tuple(issues), timezone, audit, database, language)
