"""Hop targets: what the configuration names -> what Asterisk dials, decided once.

`person_target` and `contact_target` run when the plan is made (router.py); the
dial string they return is the one the originate uses, whatever the
configuration becomes during the call. `refusal` is the allow-list the
telephony adapter applies right before each originate, against the
configuration in force then: a trunk number must match trunk.allowed_prefixes,
a SIP endpoint must be one the configuration names.
"""

from __future__ import annotations

from astreinte_ari.config.fields import sip_endpoint_of
from astreinte_ari.config.model import AppConfig, NumberNotAllowed, Person, TrunkConfig
from astreinte_ari.routing.plan import DialTarget, TargetKind

# chan_pjsip is the only SIP channel driver of supported Asterisk versions (21+
# removed chan_sip): an endpoint of pjsip.conf is dialled as PJSIP/<name>.
SIP_DIAL = "PJSIP/{endpoint}"
# The test call's built-in endpoint: dialplan/extensions_astreinte.conf [astreinte-testcall]
# answers and presses 1 (/n: the Local channel stays, so its DTMF reaches the service).
BUILTIN_TEST_DIAL = "Local/answer@astreinte-testcall/n"


def trunk_target(trunk: TrunkConfig, number: str) -> DialTarget:
    """A number through the trunk; raises NumberNotAllowed outside the allow-list."""
    return DialTarget(TargetKind.TRUNK, number, trunk.dial_string(number))


def sip_target(config: AppConfig, endpoint: str) -> DialTarget:
    """An endpoint of this PBX; raises NumberNotAllowed if the configuration does not
    name it (a target built from anything else than the configuration)."""
    if endpoint not in config.sip_endpoints():
        raise NumberNotAllowed(f"SIP endpoint {endpoint!r} is not named by the configuration")
    return DialTarget(TargetKind.SIP, endpoint, SIP_DIAL.format(endpoint=endpoint))


def person_target(config: AppConfig, person: Person) -> DialTarget:
    """What a hop to `person` dials: their mobile or their SIP endpoint (Person.rings)."""
    if person.rings == "sip" and person.sip is not None:
        return sip_target(config, person.sip)
    if person.mobile is None:  # the model refuses such a person; a guard for others
        raise NumberNotAllowed(f"{person.name} has neither a mobile nor a SIP endpoint")
    return trunk_target(config.trunk, person.mobile)


def group_target(members: tuple[DialTarget, ...]) -> DialTarget:
    """Several targets rung at once (a ring-all hop): Dial(A&B) in the dialplan."""
    address = ",".join(m.address for m in members)
    return DialTarget(TargetKind.GROUP, address, "&".join(m.dial_string for m in members), members)


def contact_target(config: AppConfig, contact: str) -> DialTarget:
    """A `Contact` of the configuration: "+33612345678" or "sip:desk-101"."""
    endpoint = sip_endpoint_of(contact)
    if endpoint is not None:
        return sip_target(config, endpoint)
    return trunk_target(config.trunk, contact)


def refusal(config: AppConfig, target: DialTarget) -> str | None:
    """Why `target` may not be dialled under `config`; None when it may.

    Every single target of it is checked (a group's members one by one)."""
    if target.kind is TargetKind.GROUP and not target.members:
        return "a group target without members"
    if target.members and target.dial_string != "&".join(m.dial_string for m in target.members):
        return f"dial string {target.dial_string!r} is not its members' dial strings"
    for leaf in target.leaves():
        if leaf.kind is TargetKind.TRUNK:
            if not config.trunk.is_allowed(leaf.address):
                prefixes = ", ".join(config.trunk.allowed_prefixes)
                return f"{leaf.address!r} is not allowed by the trunk ({prefixes})"
            if leaf.address not in leaf.dial_string:
                return f"dial string {leaf.dial_string!r} does not dial {leaf.address!r}"
        elif leaf.kind is TargetKind.SIP:
            if leaf.address not in config.sip_endpoints():
                return f"SIP endpoint {leaf.address!r} is not named by the configuration"
            if leaf.dial_string != SIP_DIAL.format(endpoint=leaf.address):
                return f"dial string {leaf.dial_string!r} does not dial SIP {leaf.address!r}"
        elif leaf.kind is TargetKind.LOCAL:
            if leaf.dial_string != BUILTIN_TEST_DIAL:
                return f"dial string {leaf.dial_string!r} is not the built-in test endpoint"
        else:
            return f"unknown target kind {leaf.kind!r}"
    return None
