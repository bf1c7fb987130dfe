"""Schedule checks that need the engine: overrides outside any shift, swaps
that name no shift. The configuration layer cannot run them (it sits below the
schedule), so `load_checked_config` hands them to its loader, which reports each
problem with its YAML line like any other error. Every reader of the file that
must refuse what `astreinte check` refuses (the service, its reloads, the
dialplan fallback, the CLI) loads it here."""

from __future__ import annotations

from pathlib import Path

from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.references import Loc
from astreinte_ari.schedule.rota import compiled_rota


def schedule_issues(config: AppConfig) -> list[tuple[Loc, str]]:
    issues: list[tuple[Loc, str]] = []
    for team_name, team in config.teams.items():
        where: Loc = ("teams", team_name)
        for rota_name in team.rotas:
            rota = compiled_rota(team, rota_name)
            for entry, problem in rota.swap_issues:
                issues.append(((*where, "swaps", entry), problem))
            for entry, override in enumerate(team.overrides):
                if override.rota != rota_name:
                    continue
                start, end = rota.override_range(entry)
                if not rota.covered_between(start, end):
                    issues.append(
                        (
                            (*where, "overrides", entry),
                            f"outside any shift: rota '{rota_name}' has nobody on call "
                            f"between {override.from_} and {override.to}",
                        )
                    )
    return issues


def load_checked_config(path: str | Path) -> AppConfig:
    """The configuration at `path`, valid down to its rotas; ConfigError otherwise."""
    return load_config(path, checks=(schedule_issues,))
