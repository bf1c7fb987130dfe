"""Self-service changes in the configuration: managers must be people of the team;
the change settings' defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig
from astreinte_ari.schedule.validate import load_checked_config
from tests.unit.rota_changes_helpers import (
    CONFIG,
    config_fixture,  # noqa: F401 (a fixture)
)


def test_managers_must_be_people_of_the_team(tmp_path: Path) -> None:
    path = tmp_path / "astreinte.yaml"
    path.write_text(CONFIG.replace("managers: [m, n]", "managers: [m, zed]"), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_checked_config(path)
    (issue,) = [str(i) for i in exc.value.issues]
    line = CONFIG.splitlines().index("    managers: [m, n]") + 1
    assert f":{line}: teams.t.managers[1]: unknown person 'zed'" in issue


def test_change_settings_defaults(config: AppConfig) -> None:
    team = config.teams["t"]
    assert team.changes.manager_approval is True and team.changes.self_approval is False
    assert config.changes_refresh_seconds == 5
