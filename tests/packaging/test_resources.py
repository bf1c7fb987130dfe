"""astreinte_ari.resources: the installed copy first, else the checkout, else a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari import resources

REPO = Path(__file__).resolve().parents[2]


def test_checkout_serves_the_top_level_files() -> None:
    assert resources.installed_data_root() is None  # an editable install copies nothing
    assert resources.data_root() == REPO
    assert resources.migrations_dir() == REPO / "migrations"
    assert (resources.dialplan_dir() / "extensions_astreinte.conf").is_file()
    assert (resources.sounds_dir() / "fr" / "astreinte-press-1.wav").is_file()
    assert (resources.config_examples_dir() / "astreinte.example.yaml").is_file()
    assert resources.alembic_ini().is_file()


def test_installed_copy_wins_and_an_incomplete_one_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "_data"
    (data / "migrations").mkdir(parents=True)
    (data / "migrations" / "env.py").write_text("")
    monkeypatch.setattr(resources.resources, "files", lambda _pkg: tmp_path)
    assert resources.data_root() == REPO  # no dialplan: not a complete copy
    (data / "dialplan").mkdir()
    (data / "dialplan" / "extensions_astreinte.conf").write_text("")
    assert resources.data_root() == data
    assert resources.sounds_dir() == data / "sounds"


def test_nothing_found_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(resources.resources, "files", lambda _pkg: tmp_path)
    monkeypatch.setattr(resources, "checkout_root", lambda: None)
    with pytest.raises(resources.DataFilesMissing, match="reinstall the package"):
        resources.migrations_dir()
