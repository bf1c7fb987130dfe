"""The plan of a line's test call: the line's real plan, its hops aimed at the test endpoint.

The test call goes through the same dialplan, announcement and routing decision as a
customer's call; only whom it rings changes. Each hop's label still names the person
it would have rung (the trail says "would ring alice +33612345678"); none of them is
dialled, and the hop is on nobody's record (person id "test-endpoint"). Pure:
configuration and plan in, plan out.
"""

from __future__ import annotations

import dataclasses

from astreinte_ari.config.fields import sip_endpoint_of
from astreinte_ari.config.lines import BUILTIN_TEST_ENDPOINT, LineTestCall
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.plan import CallPlan, DialTarget, FinalAction, Hop, TargetKind
from astreinte_ari.routing.targets import BUILTIN_TEST_DIAL, sip_target, trunk_target

TEST_CALLER_NAME = "astreinte test call"  # what the trail shows as the caller
TEST_ENDPOINT_ID = "test-endpoint"  # the person id of a test call's hops (nobody's)


def selftest_target(config: AppConfig, spec: LineTestCall) -> DialTarget:
    """What the test call rings instead of people; raises NumberNotAllowed for a
    number outside the trunk's allow-list (the loader refuses it already)."""
    if spec.endpoint == BUILTIN_TEST_ENDPOINT:
        return DialTarget(TargetKind.LOCAL, BUILTIN_TEST_ENDPOINT, BUILTIN_TEST_DIAL)
    endpoint = sip_endpoint_of(spec.endpoint)
    if endpoint is not None:
        return sip_target(config, endpoint)
    return trunk_target(config.trunk, spec.endpoint)


def would_ring(hop: Hop) -> str:
    """The routing decision a test hop stands for, as the trail shows it."""
    return f"would ring {hop.person_id} {hop.number}"


def selftest_plan(plan: CallPlan, endpoint: DialTarget, ring_timeout_s: int) -> CallPlan:
    """`plan` with every hop ringing `endpoint` for `ring_timeout_s`, no voicemail at
    the end (nobody reached: the test failed), marked as a test call."""
    hops = tuple(
        dataclasses.replace(
            hop,
            label=f"{hop.label} [test call: {would_ring(hop)}]",
            # Nobody of the team is rung: no person's statement, report or alert may
            # count this hop (the label keeps whom the routing chose).
            person_id=TEST_ENDPOINT_ID,
            person_name=f"test endpoint instead of {hop.person_name}",
            target=endpoint,
            ring_timeout_s=ring_timeout_s,
        )
        for hop in plan.hops
    )
    menu = plan.menu
    if menu is not None:  # the call takes the default choice: its hops ring the endpoint too
        choices = tuple(
            dataclasses.replace(c, plan=selftest_plan(c.plan, endpoint, ring_timeout_s))
            for c in menu.choices
        )
        menu = dataclasses.replace(menu, choices=choices)
    return dataclasses.replace(
        plan, hops=hops, final=FinalAction.HANGUP, test_call=True, menu=menu, caller_routes=()
    )


def decision_text(plan: CallPlan) -> str:
    """The real plan's cascade in one line ("p1 +336..., then sup +336...")."""
    if plan.menu is not None:  # a test call takes the menu's default choice
        default = plan.menu.default
        return f"menu default {default.key} {default.label}: {decision_text(default.plan)}"
    if not plan.hops:
        return "nobody to ring"
    return ", then ".join(f"{hop.label}: {hop.person_id} {hop.number}" for hop in plan.hops)
