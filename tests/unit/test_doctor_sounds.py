"""doctor's sound check: every prompt the configuration can play, voice alerts included."""

from __future__ import annotations

import shutil
from pathlib import Path

from astreinte_ari.app.doctor import check_sounds
from astreinte_ari.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]


def _config_with_sounds(tmp_path: Path, *, voice: bool) -> Path:
    text = (REPO / "config" / "astreinte.example.yaml").read_text()
    text = text.replace("dir: /usr/share/astreinte/sounds", f"dir: {tmp_path / 'sounds'}")
    if not voice:
        text = text.replace("[{via: sms}, {via: voice, after: 2m}]", "[{via: sms}]")
        text = text.replace("[{via: sms}, {via: email}, {via: voice, after: 2m}]", "[{via: sms}]")
        text = text.replace("david: [{via: voice}]", "david: [{via: email}]")
    shutil.copytree(REPO / "sounds", tmp_path / "sounds")
    path = tmp_path / "astreinte.yaml"
    path.write_text(text)
    return path


def test_the_shipped_sounds_cover_the_example_configuration(tmp_path: Path) -> None:
    check = check_sounds(load_config(_config_with_sounds(tmp_path, voice=True)))
    assert check.ok, check.detail


def test_a_missing_digit_prompt_fails_when_alerts_can_be_phone_calls(tmp_path: Path) -> None:
    config = load_config(_config_with_sounds(tmp_path, voice=True))
    (tmp_path / "sounds" / "fr" / "astreinte-digit-3.wav").unlink()
    check = check_sounds(config)
    assert not check.ok and "fr/astreinte-digit-3" in check.detail


def test_voice_alert_prompts_are_not_required_without_voice_alerts(tmp_path: Path) -> None:
    config = load_config(_config_with_sounds(tmp_path, voice=False))
    (tmp_path / "sounds" / "fr" / "astreinte-digit-3.wav").unlink()
    assert check_sounds(config).ok


def test_the_recording_notice_is_required_where_a_line_records(tmp_path: Path) -> None:
    path = _config_with_sounds(tmp_path, voice=False)
    (tmp_path / "sounds" / "fr" / "astreinte-recording-notice.wav").unlink()
    assert check_sounds(load_config(path)).ok  # no line records: not needed
    text = path.read_text().replace(
        "    # record_calls: true\n    # recording_purpose:",
        "    record_calls: true\n    recording_purpose:",
    )
    assert "\n    record_calls: true\n" in text
    path.write_text(text)
    check = check_sounds(load_config(path))
    assert not check.ok and "fr/astreinte-recording-notice" in check.detail


def test_a_missing_menu_prompt_fails(tmp_path: Path) -> None:
    config = load_config(_config_with_sounds(tmp_path, voice=True))
    (tmp_path / "sounds" / "fr" / "astreinte-menu-accueil.wav").unlink()
    check = check_sounds(config)
    assert not check.ok and "fr/astreinte-menu-accueil" in check.detail
