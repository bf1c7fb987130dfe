"""Building blocks of the many-calls sipp scenarios (crowd.py, phones.py).

Why they look the way they do (sipp 3.6.1, checked in its source and here):
- sipp runs ONE scenario element per step and reads the network between
  steps, so a message may arrive while a call sits on any nop, send or pause.
  Such a message is "unexpected", and sipp then jumps to the label
  `_unexp.main` (our handler) with the message queued for its first recv.
  Hence: every state change (`phase`, deadlines) happens in the action of the
  send/recv that causes it, and the handler resumes from `phase` alone.
- Naming `_unexp.retaddr` makes sipp abort a call whose message the handler
  cannot match (else it would re-enter the handler forever); each handler recv
  sets it back to 0, so the next message is handled again.
- `<pause variable=...>` takes its length from a call variable, unlike
  `timeout=` attributes; deadlines are absolute (gettimeofday, ms), so a wait
  cut short by a message resumes with what is left.
"""

from __future__ import annotations

NEVER_MS = 86_400_000  # "no deadline": a day
REARM = '<assign assign_to="_unexp.retaddr" value="0"/>'

SDP = """v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv"""

# A 200 OK to the request just received (BYE, CANCEL).
OK_TO_LAST = """<![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]>"""


def now_ms(var: str) -> str:
    """Actions: `var` = now in ms since the epoch (a double holds it exactly)."""
    return (
        f'<gettimeofday assign_to="{var},{var}_us"/><multiply assign_to="{var}" value="1000"/>'
        f'<divide assign_to="{var}_us" value="1000"/><add assign_to="{var}" variable="{var}_us"/>'
    )


def set_phase(n: int) -> str:
    """Action: the call is now in phase n."""
    return f'<assign assign_to="phase" value="{n}"/>'


def jump_if_phase(targets: dict[int, str]) -> str:
    """Elements: go to targets[phase]; fall through when phase is none of them."""
    tests = "".join(
        f'<test assign_to="in{n}" variable="phase" compare="equal" value="{n}"/>' for n in targets
    )
    jumps = "".join(f'<nop next="{label}" test="in{n}"/>' for n, label in targets.items())
    return f"<nop><action>{tests}</action></nop>{jumps}"


def classify_action() -> str:
    """Actions for a handler recv: re-arm, and is_inv/is_bye/is_cancel by CSeq method."""
    methods = ("INVITE", "BYE", "CANCEL")
    tests = "".join(
        f'<strcmp assign_to="d_{m.lower()}" variable="cseq_m" value="{m}"/>'
        f'<test assign_to="is_{m.lower()[:3]}" variable="d_{m.lower()}" compare="equal" '
        'value="0"/>'
        for m in methods
    )
    return (
        f'{REARM}<ereg regexp="INVITE|CANCEL|BYE|ACK" search_in="hdr" header="CSeq:" '
        f'assign_to="cseq_m"/><ereg regexp=".*" search_in="hdr" header="To:" '
        f'assign_to="to_hdr"/>{tests}'
    )


def handler_recv(*, response: int | None = None, request: str | None = None, next_label: str,
                 optional: bool = True, extra_actions: str = "") -> str:  # fmt: skip
    """One recv of the `_unexp.main` handler."""
    what = f'response="{response}"' if response is not None else f'request="{request}"'
    opt = ' optional="true"' if optional else ""
    return (
        f'<recv {what}{opt} next="{next_label}"><action>{classify_action()}'
        f"{extra_actions}</action></recv>"
    )


def scenario(name: str, body: str) -> str:
    """The whole file; sipp refuses a variable set and never read, so the handler's
    classification variables (not all read by every scenario) are declared read."""
    reference = '<Reference variables="is_inv,is_bye,is_can,to_hdr"/>'
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<scenario name="{name}">\n{body}\n'
        f"{reference}\n</scenario>\n"
    )
