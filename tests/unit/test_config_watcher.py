"""Live edits: a real file edited valid -> invalid -> valid, polled every 20 ms."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from astreinte_ari.config.loader import ConfigError, load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.config.watcher import ConfigWatcher, content_version

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.yaml"


async def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out waiting for the watcher"
        await asyncio.sleep(0.01)


async def test_watcher_accepts_valid_edits_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "astreinte.yaml"
    original = DEMO.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    initial = load_config(path)
    changes: list[tuple[AppConfig, str]] = []
    errors: list[ConfigError] = []
    watcher = ConfigWatcher(
        path, initial, lambda c, v: changes.append((c, v)), on_error=errors.append, interval=0.02
    )
    watcher.start()
    try:
        await asyncio.sleep(0.1)
        assert changes == [] and errors == []  # unchanged file: nothing to do

        # 1. valid edit: the new value is live
        edited = original.replace("Demo", "Demo edited", 1)
        path.write_text(edited, encoding="utf-8")
        await _wait_for(lambda: len(changes) == 1)
        config, version = changes[0]
        assert version == content_version(edited.encode()) == watcher.version
        assert watcher.config is config and config is not initial
        assert watcher.previous_text == original and watcher.text == edited

        # 2. invalid edit: reported once, with its line, the last good stays
        caplog.set_level(logging.ERROR, logger="astreinte_ari.config.watcher")
        path.write_text(edited.replace("timezone:", "timezone: Mars/Olympus #", 1), "utf-8")
        await _wait_for(lambda: len(errors) == 1)
        await asyncio.sleep(0.1)
        assert len(errors) == 1 and len(changes) == 1
        assert watcher.config is config
        assert any("timezone" in str(i) for i in errors[0].issues)
        assert "refused, keeping the last good one" in caplog.text

        # 3. fixed again: accepted
        final = edited.replace("Demo edited", "Demo final", 1)
        path.write_text(final, encoding="utf-8")
        await _wait_for(lambda: len(changes) == 2)
        assert watcher.config is changes[1][0]
        assert watcher.previous_text == edited
    finally:
        await watcher.stop()


async def test_watcher_survives_a_missing_file_and_a_failing_callback(tmp_path: Path) -> None:
    path = tmp_path / "astreinte.yaml"
    path.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    initial = load_config(path)

    def boom(config: AppConfig, version: str) -> None:
        raise RuntimeError("callback bug")

    errors: list[ConfigError] = []
    watcher = ConfigWatcher(path, initial, boom, on_error=errors.append, interval=0.01)
    path.unlink()
    assert await watcher.check_once() is False
    assert "cannot read the file" in str(errors[0])
    path.write_text(DEMO.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert await watcher.check_once() is True  # the callback raised; the watcher goes on
    assert watcher.config is not initial
