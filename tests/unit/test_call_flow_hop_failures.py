"""Why a hop fails; the cascade goes on to the next hop and to voicemail.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py), and
how a PBX hangup cause is classified."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from astreinte_ari.callflow.outcomes import HopOutcome
from astreinte_ari.callflow.ringing import classify_failure
from astreinte_ari.callflow.telephony import DialRefused, TelephonyError
from tests.unit.call_flow_stories import HopEnd, Story, failing_hop, leaves_message, leg_fails, tell
from tests.unit.callflow_fakes import FakePbx
from tests.unit.callflow_line import Line
from tests.unit.virtual_time import virtual_time


def originate_error(error: Exception) -> Callable[[], FakePbx]:
    return lambda: FakePbx(errors={"originate": [error, None]})


async def refused_then_busy(line: Line) -> str:
    call = await line.arrive()
    await line.leg(1)
    await line.fails(await line.leg(2), 17, "User busy")
    await leaves_message(line, 8)
    return call


HOP_FAILURES = [
    failing_hop(
        "busy",
        leg_fails(17, "User busy", rings=True),
        HopOutcome.BUSY,
        HopEnd(17, "User busy", 5.0),
    ),
    failing_hop(
        "busy before ringing",
        leg_fails(17, "User busy", rings=False, after_s=0),
        HopOutcome.BUSY,
        HopEnd(17, "User busy", 0.0),
    ),
    failing_hop(
        "rejected (603 Decline)",
        leg_fails(21, "Call Rejected", rings=True),
        HopOutcome.REJECTED,
        HopEnd(21, "Call Rejected", 5.0),
    ),
    failing_hop(
        "unreachable: congestion",
        leg_fails(34, "Circuit/channel congestion", rings=False, after_s=0),
        HopOutcome.UNREACHABLE,
        HopEnd(34, "Circuit/channel congestion", 0.0),
    ),
    failing_hop(
        "unreachable: subscriber absent",
        leg_fails(20, "Subscriber absent", rings=False, after_s=1),
        HopOutcome.UNREACHABLE,
        HopEnd(20, "unreachable: subscriber absent", 1.0),
    ),
    failing_hop(
        "no answer: it rang, then the SIP transaction timed out",
        leg_fails(18, "No user responding", rings=True, after_s=16),
        HopOutcome.NO_ANSWER,
        HopEnd(18, "no answer (no user responding)", 16.0),
    ),
    failing_hop(
        "unreachable: SIP timeout",
        leg_fails(18, "No user responding", rings=False, after_s=16),
        HopOutcome.UNREACHABLE,
        HopEnd(18, "unreachable: no user responding", 16.0),
    ),
    failing_hop(
        "unreachable: no response until Asterisk's timeout",
        leg_fails(0, "Unknown", rings=False, after_s=20),
        HopOutcome.UNREACHABLE,
        HopEnd(0, "unreachable: no response", 20.0),
    ),
    failing_hop(
        "no answer: rang until Asterisk's timeout",
        leg_fails(0, "Unknown", rings=True, after_s=20),
        HopOutcome.NO_ANSWER,
        HopEnd(0, "no answer (rang until the timeout)", 20.0),
    ),
    failing_hop(
        "no answer: the phone gave up ringing",
        leg_fails(19, "User alerting, no answer", rings=True, after_s=15),
        HopOutcome.NO_ANSWER,
        HopEnd(19, "no answer", 15.0),
    ),
    failing_hop(
        "no answer: normal clearing while ringing",
        leg_fails(16, "Normal Clearing", rings=True, after_s=9),
        HopOutcome.NO_ANSWER,
        HopEnd(16, "Normal Clearing", 9.0),
    ),
    failing_hop(
        "no answer: the service's ring timeout",
        leg_fails(None, rings=True, after_s=0),
        HopOutcome.NO_ANSWER,
        HopEnd(None, "no answer within 20 s (service timeout)", 23.0),
    ),
    failing_hop(
        "unreachable: the service's ring timeout, never rang",
        leg_fails(None, rings=False, after_s=0),
        HopOutcome.UNREACHABLE,
        HopEnd(None, "unreachable: no response within 20 s (service timeout)", 23.0),
    ),
    failing_hop(
        "refused by the dial guard: never dialled",
        refused_then_busy,
        HopOutcome.REFUSED,
        HopEnd(None, "+33612345678 is not allowed by the trunk", 0.0),
        pbx=originate_error(DialRefused("+33612345678 is not allowed by the trunk")),
    ),
    failing_hop(
        "telephony error: the originate failed",
        refused_then_busy,
        HopOutcome.FAILED,
        HopEnd(None, "ARI 500 POST /channels: Internal Server Error", 0.0),
        pbx=originate_error(TelephonyError("ARI 500 POST /channels: Internal Server Error")),
    ),
]


@pytest.mark.parametrize("story", HOP_FAILURES)
@virtual_time
async def test_a_hop_fails_and_the_cascade_goes_on(story: Story) -> None:
    line, call = await tell(story)
    first, second = line.hops(call)
    assert (first.person_id, second.person_id) == ("alice", "bob")
    assert story.hop1 is not None
    rang = (1, "ringing") in line.progress(call)
    if story.hop1.cause is not None:  # the trail agrees with the classification
        assert classify_failure(story.hop1.cause, rang) is story.hops[0]


@pytest.mark.parametrize(
    ("cause", "ringing", "outcome"),
    [
        (17, False, HopOutcome.BUSY),
        (17, True, HopOutcome.BUSY),
        (21, True, HopOutcome.REJECTED),
        (0, True, HopOutcome.NO_ANSWER),
        (0, False, HopOutcome.UNREACHABLE),
        (16, True, HopOutcome.NO_ANSWER),
        (16, False, HopOutcome.UNREACHABLE),
        (18, True, HopOutcome.NO_ANSWER),
        (18, False, HopOutcome.UNREACHABLE),
        (19, True, HopOutcome.NO_ANSWER),
        (20, True, HopOutcome.UNREACHABLE),
        (34, False, HopOutcome.UNREACHABLE),
        (127, True, HopOutcome.UNREACHABLE),
    ],
    ids=lambda v: str(v).lower() if not isinstance(v, bool) else ("rang" if v else "silent"),
)
def test_classify_failure(cause: int, ringing: bool, outcome: HopOutcome) -> None:
    assert classify_failure(cause, ringing) is outcome
