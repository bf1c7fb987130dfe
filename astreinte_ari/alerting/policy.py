"""Pure scheduling of an alert's notifications: who, by which channel, when.

An alert's notifications form one numbered sequence. Round r starts at
opened_at + r * renotify_every and goes to the person at position
min(r // escalate_after, len(chain) - 1) of the chain (the last person keeps
being notified); within a round each of that person's channels fires `after`
seconds into the round. The alert row stores only the index of the next step,
so the sequence is recomputed identically after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from astreinte_ari.config.alerting import AlertPolicy, ChannelSpec

ChannelsFor = Callable[[str], tuple[ChannelSpec, ...]]


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    round: int  # 0-based
    person_id: str
    channel: ChannelSpec
    at: datetime
    escalated: bool  # first step for a new person of the chain (round > 0)


def person_for_round(chain: tuple[str, ...], policy: AlertPolicy, round_no: int) -> str:
    return chain[min(round_no // policy.escalate_after, len(chain) - 1)]


def step_at(
    index: int,
    *,
    opened_at: datetime,
    chain: tuple[str, ...],
    policy: AlertPolicy,
    channels_for: ChannelsFor,
) -> Step | None:
    """The index-th notification, or None when the policy's rounds are exhausted."""
    if not chain or index < 0:
        return None
    seen = 0
    for round_no in range(policy.max_rounds):
        person = person_for_round(chain, policy, round_no)
        channels = channels_for(person)
        if index < seen + len(channels):
            channel = channels[index - seen]
            previous = person_for_round(chain, policy, round_no - 1) if round_no else person
            start = opened_at + timedelta(seconds=round_no * policy.renotify_every)
            return Step(
                index=index,
                round=round_no,
                person_id=person,
                channel=channel,
                at=start + timedelta(seconds=channel.after),
                escalated=round_no > 0 and previous != person and index == seen,
            )
        seen += len(channels)
    return None


def due_steps(
    next_step: int,
    now: datetime,
    *,
    opened_at: datetime,
    chain: tuple[str, ...],
    policy: AlertPolicy,
    channels_for: ChannelsFor,
) -> tuple[list[Step], Step | None]:
    """Steps due at `now` starting from `next_step`, and the first one not yet due.

    A late wake-up (service down for a while) sends only the latest due round's
    steps, not every missed round: people get one reminder, not a burst.
    """
    due: list[Step] = []
    index = next_step
    while True:
        step = step_at(
            index, opened_at=opened_at, chain=chain, policy=policy, channels_for=channels_for
        )
        if step is None or step.at > now:
            break
        due.append(step)
        index += 1
    if due:
        last_round = due[-1].round
        due = [s for s in due if s.round == last_round]
    return due, step_at(
        index, opened_at=opened_at, chain=chain, policy=policy, channels_for=channels_for
    )
