"""The README's demo works as written: the demo phone's defaults, the link between
scripts/demo.sh and config/demo.yaml, and commands that exist after setup.

(Who is rung on any date: test_cli_check.py; doctor against the demo PBX:
tests/e2e/test_demo.py.)
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import wave
from pathlib import Path
from types import ModuleType

import pytest

from astreinte_ari import cli
from astreinte_ari.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
SOUNDS = REPO / "sounds" / "fr"


def _demo_phone() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_phone", REPO / "scripts" / "demo_phone.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seconds(name: str) -> float:
    with wave.open(str(SOUNDS / f"{name}.wav")) as w:
        return w.getnframes() / w.getframerate()


def test_default_hold_reaches_the_voicemail_and_leaves_a_message() -> None:
    # A 40 s hold hung up before the voicemail: announcement, then every hop rings
    # for its whole timeout when no phone runs, then the greeting.
    line = load_config(DEMO).lines["+33180000000"]
    announcement = max(_seconds(f"astreinte-{p}") for p in ("after-hours", "night", "weekend",
                                                            "holiday"))  # fmt: skip
    rings = sum(hop.timeout for hop in line.after_hours.hops)
    recording_starts = announcement + rings + _seconds("astreinte-voicemail")
    assert line.after_hours.finally_ == "voicemail"
    assert recording_starts + 10 <= _demo_phone().DEFAULT_HOLD_S  # a message of 10 s at least


def test_each_call_comes_from_a_new_number_unless_chosen() -> None:
    phone = _demo_phone()
    # One number would hit the per-caller rate limit (5 cascades in 10 min) on the 6th call.
    numbers = {phone._fresh_caller() for _ in range(20)}
    assert len(numbers) > 5 and all(re.fullmatch(r"\+3319900\d{4}", n) for n in numbers)
    args = phone.build_parser().parse_args(["call", "+33180000000"])
    assert (args.caller, args.hold) == (None, phone.DEFAULT_HOLD_S)
    args = phone.build_parser().parse_args(["call", "+33180000000", "--from", "+33199000001"])
    assert args.caller == "+33199000001"


def test_the_demo_reads_the_password_file_demo_sh_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Exported only inside demo.sh, the password was missing for `doctor` in another shell.
    script = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    assert re.search(r"^demo=var/demo$", script, re.M)
    assert 'secret="$demo/ari.secret"' in script and "umask 077" in script
    assert "ASTREINTE_ARI_PASSWORD" not in script
    assert '--dialplan-global "ASTREINTE_CONFIG=' in script
    monkeypatch.delenv("ASTREINTE_ARI_PASSWORD", raising=False)
    assert load_config(DEMO).ari.password_file == REPO / "var" / "demo" / "ari.secret"


def _demo_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return readme[readme.index("## Two commands") : readme.index("## Configuration")]


def _commands(prefix: str) -> list[list[str]]:
    """Command lines of the demo section: every line of a ```sh block, and the
    `$ `-prefixed lines of other blocks (the rest is output)."""
    found, block = [], None
    for line in _demo_section().splitlines():
        if line.startswith("```"):
            block = None if block is not None else line[3:]
            continue
        if block is None or (block != "sh" and not line.startswith("$ ")):
            continue
        text = line.removeprefix("$ ").split("  #")[0].strip()
        if text.startswith(prefix):
            found.append(shlex.split(text)[1:])
    return found


def test_readme_demo_uses_commands_that_exist_after_setup() -> None:
    # `astreinte` is in .venv after bootstrap, not on the PATH.
    assert _commands("astreinte ") == []
    commands = _commands(".venv/bin/astreinte")
    assert len(commands) >= 4, commands
    parser = cli.build_parser()
    for argv in commands:
        parser.parse_args(argv)  # exits on an unknown command or option
    phones = _commands("scripts/demo-phone.sh")
    assert len(phones) >= 2, phones
    for argv in phones:
        _demo_phone().build_parser().parse_args(argv)
