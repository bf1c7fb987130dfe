"""Which phones the service holds for on-call calls right now (ringing or talking).

A person already talking to one caller must not be rung again for the next
one (routing/busy.py decides what to do instead): the service itself knows,
since every agent leg runs in one of its calls. The registry is keyed by what
is dialled (each single target of a hop), so the same phone reached from two
lines, or as a member of a ring-all hop, is recognised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from astreinte_ari.callflow.audit_events import HopEnded, HopStarted
from astreinte_ari.callflow.outcomes import HopOutcome
from astreinte_ari.callflow.runtime import CallRuntime
from astreinte_ari.routing.plan import DialTarget, Hop


class EngagedTargets:
    """Dial string -> the calls holding it (one service, one event loop: no locks)."""

    def __init__(self) -> None:
        self._holders: dict[str, list[str]] = {}

    def holder(self, target: DialTarget, call_id: str) -> str | None:
        """Another call holding any single target of `target`, or None."""
        for leaf in target.leaves():
            for holder in self._holders.get(leaf.dial_string, ()):
                if holder != call_id:
                    return holder
        return None

    @contextlib.contextmanager
    def engage(self, target: DialTarget, call_id: str) -> Iterator[None]:
        """`target` is held by `call_id` for the duration (ringing, prompt, talk)."""
        keys = [leaf.dial_string for leaf in target.leaves()]
        for key in keys:
            self._holders.setdefault(key, []).append(call_id)
        try:
            yield
        finally:
            for key in keys:
                holders = self._holders.get(key, [])
                if call_id in holders:
                    holders.remove(call_id)
                if not holders:
                    self._holders.pop(key, None)

    def __len__(self) -> int:
        return len(self._holders)


def record_skipped_hop(rt: CallRuntime, seq: int, hop: Hop, hop_id: str, reason: str) -> None:
    """A hop not rung because its person is on another on-call call: on the trail
    like any hop (started and ended at once), so an auditor sees who was passed
    over and why."""
    now = rt.clock()
    rt.audit.emit(
        HopStarted(
            call_id=rt.call_id,
            hop_id=hop_id,
            seq=seq,
            label=hop.label,
            person_id=hop.person_id,
            person_name=hop.person_name,
            number=hop.number,
            at=now,
            target_kind=hop.target.kind.value,
            target=hop.target.dial_string,
        )
    )
    rt.audit.emit(HopEnded(hop_id=hop_id, outcome=HopOutcome.SKIPPED, at=now, cause_text=reason))
