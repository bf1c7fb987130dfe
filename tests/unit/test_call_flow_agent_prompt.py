"""What the agent does at the "press 1" prompt: accepts, declines, waits, hangs up.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

from typing import Any

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from tests.unit.call_flow_stories import (
    ALICE,
    PRESS_1,
    Agent,
    HopEnd,
    Story,
    at_the_prompt,
    does_nothing,
    presses,
    story,
    tell,
)
from tests.unit.callflow_fakes import FakePbx, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time


async def hangs_up(line: Line, leg: str) -> None:
    await line.hangs_up(leg, 16, "Normal Clearing")


def prompt_stopped(line: Line, call_id: str) -> None:
    [prompt] = line.plays(PRESS_1)
    assert (prompt,) in line.pbx.did("stop_playback")


def agent_story(story_id: str, agent: Agent, outcome: HopOutcome, hop1: HopEnd, **kw: Any) -> Any:
    accepted = outcome is HopOutcome.ACCEPTED
    return story(
        story_id,
        plan(ALICE, announcement=None),
        script=at_the_prompt(agent),
        path="dialing > agent_prompt > " + ("bridged > ended" if accepted else "ended"),
        outcome=CallOutcome.ACCEPTED if accepted else CallOutcome.NO_ONE,
        detail="talked 10.0s with alice, ended by caller" if accepted else "all 1 hops failed",
        hops=(outcome,),
        hop1=hop1,
        **kw,
    )


AGENT_AT_THE_PROMPT = [
    agent_story(
        "presses 1 once the prompt is over",
        presses("1"),
        HopOutcome.ACCEPTED,
        HopEnd(16, "Normal Clearing", 12.0, "1"),  # closed when the talk ends
    ),
    agent_story(
        "presses 1 during the prompt: it is cut",
        presses("1"),
        HopOutcome.ACCEPTED,
        HopEnd(16, "Normal Clearing", 12.0, "1"),
        pbx=lambda: FakePbx(held_sounds=frozenset({PRESS_1})),
        check=prompt_stopped,
    ),
    agent_story(
        "presses a wrong key",
        presses("2"),
        HopOutcome.DECLINED,
        HopEnd(None, "wrong key '2'", 2.0, "2"),
    ),
    agent_story(
        "sends something that is no key",
        presses("1; DROP TABLE calls"),
        HopOutcome.DECLINED,
        HopEnd(None, "wrong key '?'", 2.0, "?"),
    ),
    agent_story(
        "presses no key: the accept window closes",
        does_nothing,
        HopOutcome.NOT_ACCEPTED,
        HopEnd(None, "no key pressed", 7.0),  # answered at 2 s, 5 s window
    ),
    agent_story(
        "presses no key during a prompt that never ends",
        does_nothing,
        HopOutcome.NOT_ACCEPTED,
        HopEnd(None, "no key pressed", 62.0),  # the prompt's 60 s cap
        pbx=lambda: FakePbx(held_sounds=frozenset({PRESS_1})),
    ),
    agent_story(
        "hangs up at the prompt",
        hangs_up,
        HopOutcome.DECLINED,
        HopEnd(16, "hung up at prompt (Normal Clearing)", 2.0),
    ),
    agent_story(
        "the caller's key 1 does not accept for the agent",
        presses("1", channel=CALLER),
        HopOutcome.NOT_ACCEPTED,
        HopEnd(None, "no key pressed", 7.0),
    ),
]


@pytest.mark.parametrize("story", AGENT_AT_THE_PROMPT)
@virtual_time
async def test_the_agent_at_the_prompt(story: Story) -> None:
    line, call = await tell(story)
    accepted = ["accepted"] if story.hops[0] is HopOutcome.ACCEPTED else []
    events = ["ringing", "answered", *accepted]
    assert line.progress(call) == [(1, e) for e in events]
