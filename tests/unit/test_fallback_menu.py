"""The dialplan fallback with a menu and caller routes: the AGI plays the prompt,
reads one key (GET OPTION) and dials the chosen line's cascade; the last resort
rings the default choice's first hop. Without Asterisk (a scripted channel)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from astreinte_ari.adapters.fallback.agi import handle_call
from astreinte_ari.adapters.fallback.lastresort import last_resort_target
from astreinte_ari.adapters.fallback.records import fallback_record
from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.config.loader import load_config
from tests.unit.fallback_helpers import REPO, T0, FakeChannel, Ring, _steps

MENU_DID = "+33180000050"
ALICE = "PJSIP/+33610000001"  # the demo line's first hop (its rota: alice)
BOB = "PJSIP/+33610000002"  # the "bob" line's only hop
MENU = """
  "+33180000051":
    name: Bob line
    team: demo
    after_hours: {hops: [{person: bob, timeout: 20}], finally: hangup}
  "+33180000050":
    name: Accueil
    team: demo
    menu:
      prompt: astreinte-menu-demo
      timeout: 5
      default: "1"
      choices:
        "1": {label: Demo, line: "+33180000000"}
        "2": {label: Bob, line: "+33180000051"}
    caller_routes: [{label: vip, callers: ["+33699999999"], line: "+33180000051"}]
    after_hours: {hops: [{person: sup, timeout: 20}]}
"""


class MenuChannel(FakeChannel):
    def __init__(self, results: dict[str, Ring], key: str) -> None:
        super().__init__(results)
        self.key = key
        self.menus: list[tuple[str, int]] = []

    def read_key(self, prompt: str, timeout_s: int) -> str:
        self.menus.append((prompt, timeout_s))
        return self.key


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "astreinte.yaml"
    path.parent.mkdir()
    demo = (REPO / "config" / "demo.yaml").read_text()
    text = demo.replace("lines:\n", "lines:" + MENU, 1)
    path.write_text(text + f'\nfallback: {{spool_dir: "{tmp_path / "spool"}"}}\n')
    load_config(path)  # the test's own configuration is valid
    return path


def _run(config_file: Path, channel: MenuChannel, uniqueid: str, caller: str) -> CallOutcome:
    env = {"agi_channel": "PJSIP/caller-1", "agi_uniqueid": uniqueid, "agi_callerid": caller}
    return handle_call(channel, env, MENU_DID, str(config_file), clock=channel.clock)


def _dialled(channel: FakeChannel) -> list[str]:
    return [data.split(",")[0] for app, data in channel.apps if app == "Dial"]


@pytest.mark.parametrize(
    ("key", "first", "why"),
    [
        ("2", BOB, "menu: key 2 → Bob (+33180000051)"),
        ("", ALICE, "menu: no key within 5 s → default 1 Demo"),
        ("9", ALICE, "menu: key '9' not offered → default 1 Demo"),
        ("1", ALICE, "menu: key 1 → Demo (+33180000000)"),
    ],
)
def test_the_key_chooses_the_cascade_the_agi_dials(
    config_file: Path, key: str, first: str, why: str
) -> None:
    channel = MenuChannel({first: Ring("ANSWER", "16", "1")}, key)
    assert _run(config_file, channel, "1800000000.1", "+33611111111") is CallOutcome.ACCEPTED
    sounds = load_config(config_file).sounds_dir
    assert channel.menus == [(str(sounds / "fr" / "astreinte-menu-demo"), 5)]
    assert _dialled(channel) == [first]
    steps = _steps(config_file.parent.parent / "spool" / "1800000000.1.jsonl")
    assert [s["event"] for s in steps] == ["call", "route", "hop", "hop_end", "end"]
    assert steps[1]["detail"] == why
    assert steps[0]["did"] == MENU_DID  # counted under the dialled line
    record = fallback_record("1800000000.1", steps, found_at=T0)
    reasons = [e.reason for e in record.events if isinstance(e, StateChanged)]
    assert f"{why} (fallback)" in reasons


def test_a_listed_caller_skips_the_menu(config_file: Path) -> None:
    channel = MenuChannel({BOB: Ring("ANSWER", "16", "1")}, "1")
    assert _run(config_file, channel, "1800000000.2", "0033 6 99 99 99 99") is (
        CallOutcome.ACCEPTED
    )
    assert channel.menus == [] and _dialled(channel) == [BOB]
    steps = _steps(config_file.parent.parent / "spool" / "1800000000.2.jsonl")
    assert steps[1]["detail"] == "caller route vip → Bob line (+33180000051)"


def test_the_last_resort_rings_the_default_choice(config_file: Path) -> None:
    config = load_config(config_file)
    assert last_resort_target(config, MENU_DID, datetime.fromtimestamp(T0, UTC)) == ALICE
