"""The call-flow stories together cover the state machine.

Every CallState is reached and every allowed transition taken by some story of the
tests/unit/test_call_flow_*.py tables; every other transition is refused."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from astreinte_ari.callflow.outcomes import ALLOWED_TRANSITIONS, CallState
from astreinte_ari.callflow.runtime import CallRuntime, SoundLibrary
from tests.unit.call_flow_stories import Story
from tests.unit.callflow_fakes import T0, FakePbx, Trail, plan
from tests.unit.callflow_line import CALLER
from tests.unit.test_call_flow_admission import ADMISSION_QUEUE
from tests.unit.test_call_flow_agent_prompt import AGENT_AT_THE_PROMPT
from tests.unit.test_call_flow_caller_hangs_up import CALLER_HANGS_UP
from tests.unit.test_call_flow_cleanup_errors import CLEANUP_ERRORS
from tests.unit.test_call_flow_early_dial import EARLY_DIAL
from tests.unit.test_call_flow_hop_failures import HOP_FAILURES
from tests.unit.test_call_flow_menus import MENUS
from tests.unit.test_call_flow_party_gone import GONE_IS_NORMAL
from tests.unit.test_call_flow_paths import PATHS
from tests.unit.test_call_flow_restart import RESUMED

ALL_STORIES: list[Story] = [
    param.values[0]
    for param in (
        *PATHS,
        *CALLER_HANGS_UP,
        *AGENT_AT_THE_PROMPT,
        *HOP_FAILURES,
        *GONE_IS_NORMAL,
        *CLEANUP_ERRORS,
        *ADMISSION_QUEUE,
        *RESUMED,
        *EARLY_DIAL,
        *MENUS,
    )
]


def test_the_stories_reach_every_state() -> None:
    reached = {s for st in ALL_STORIES for s in (st.start, *st.states())}
    assert reached == set(CallState), "a state no story reaches"


def test_the_stories_take_every_allowed_transition() -> None:
    allowed = {(a, b) for a, nexts in ALLOWED_TRANSITIONS.items() for b in nexts}
    taken = {t for st in ALL_STORIES for t in st.transitions()}
    assert taken - allowed == set(), "a story expects a transition the machine refuses"
    assert allowed - taken == set(), "an allowed transition no story takes"


def test_every_other_transition_is_refused() -> None:
    rt = CallRuntime(
        call_id="c",
        caller_channel_id=CALLER,
        plan=plan(),
        port=FakePbx(),  # type: ignore[arg-type]
        audit=Trail(),
        sounds=SoundLibrary(PurePosixPath("/snd")),
        clock=lambda: T0,
        bind=lambda object_id: None,
    )
    refused = [(a, b) for a in CallState for b in CallState if b not in ALLOWED_TRANSITIONS[a]]
    assert refused
    for from_state, to_state in refused:
        rt.restore(0, from_state)
        with pytest.raises(RuntimeError, match="illegal transition"):
            rt.transition(to_state, "test")
