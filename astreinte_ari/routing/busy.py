"""The order a cascade rings its hops in, given who is already on an on-call call.

Pure: `busy_with(hop)` is asked each time a hop comes up (someone free a minute
ago may be talking now) and answers the id of the other call that holds the
hop's phone, or None. A hop without the accept prompt (a switchboard forward)
is never "busy": a switchboard takes several calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from astreinte_ari.routing.plan import BusyAgents, Hop

BusyLookup = Callable[[Hop], str | None]


@dataclass(frozen=True, slots=True)
class Turn:
    """One hop's turn: ring it, or record it as skipped (`busy_with` says why)."""

    seq: int  # the hop's position in the plan (1-based), whatever the order rung
    hop: Hop
    ring: bool
    busy_with: str | None = None  # the other on-call call holding this phone

    def reason(self) -> str | None:
        """What the trail says about a busy person (skipped, or rung last)."""
        if self.busy_with is None:
            return None
        what = "not rung" if not self.ring else "rung last"
        return f"busy: on call {self.busy_with[:8]} ({what})"


def cascade_turns(
    hops: Sequence[Hop], busy_with: BusyLookup, policy: BusyAgents, first_seq: int = 1
) -> Iterator[Turn]:
    """The turns of `hops` from `first_seq` on, under the line's busy policy."""
    deferred: list[tuple[int, Hop]] = []
    for seq, hop in enumerate(hops, start=1):
        if seq < first_seq:
            continue
        busy = hop_busy(hop, busy_with) if policy is not BusyAgents.RING else None
        if busy is None:
            yield Turn(seq, hop, ring=True)
        elif policy is BusyAgents.SKIP:
            yield Turn(seq, hop, ring=False, busy_with=busy)
        else:
            deferred.append((seq, hop))
    for seq, hop in deferred:
        # Last resort before the final action: rung even if still on the other call.
        yield Turn(seq, hop, ring=True, busy_with=hop_busy(hop, busy_with))


def hop_busy(hop: Hop, busy_with: BusyLookup) -> str | None:
    """The other call holding this hop's phone; a ring-all hop is busy only when
    every one of its people is (the free ones are rung, see free_members)."""
    if not hop.require_accept:
        return None
    if not hop.members:
        return busy_with(hop)
    holders = [busy_with(member) for member in hop.members]
    return holders[0] if all(holders) else None


def free_members(
    hop: Hop, busy_with: BusyLookup, policy: BusyAgents, rung_last: bool
) -> tuple[list[Hop], list[tuple[Hop, str]]]:
    """A ring-all hop's people to ring, and those passed over (with the call holding
    them). Rung last (every one busy, busy_agents: last) or `ring`: all of them."""
    if policy is BusyAgents.RING or rung_last:
        return list(hop.members), []
    ring: list[Hop] = []
    skipped: list[tuple[Hop, str]] = []
    for member in hop.members:
        holder = busy_with(member)
        if holder is None:
            ring.append(member)
        else:
            skipped.append((member, holder))
    return ring, skipped
