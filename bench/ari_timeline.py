"""The channel timeline of a benchmark run, from the ARI events Asterisk timestamped
itself (bench_call_setup.py, bench_early_dial.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime


def _ts(event: dict[str, object]) -> float:
    return datetime.strptime(str(event["timestamp"]), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


@dataclass
class ChannelTimeline:
    """When each channel of the run was created, went Up, got its DTMF 1 and entered
    a bridge (Asterisk's own event timestamps); callers and agent legs per flow."""

    callers: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    agents: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    created: dict[str, float] = field(default_factory=dict)
    up: dict[str, float] = field(default_factory=dict)
    dtmf: dict[str, float] = field(default_factory=dict)
    entered: dict[str, float] = field(default_factory=dict)


def channel_timeline(
    events: list[dict[str, object]], did_flow: dict[str, str], mobile_flow: dict[str, str]
) -> ChannelTimeline:
    """did_flow: DID -> flow (callers dial it); mobile_flow: agent number -> flow."""
    t = ChannelTimeline()
    for event in events:
        channel = event.get("channel") or {}
        assert isinstance(channel, dict)
        cid, name = str(channel.get("id", "")), str(channel.get("name", ""))
        kind = event.get("type")
        if kind == "ChannelCreated":
            t.created[cid] = _ts(event)
            exten = str((channel.get("dialplan") or {}).get("exten", ""))
            if name.startswith("PJSIP/caller-") and exten in did_flow:
                t.callers[did_flow[exten]].append(cid)
            for mobile, flow in mobile_flow.items():
                if name.startswith(f"PJSIP/{mobile}-"):
                    t.agents[flow].append(cid)
        elif kind == "ChannelStateChange" and channel.get("state") == "Up":
            t.up.setdefault(cid, _ts(event))
        elif kind == "ChannelDtmfReceived" and event.get("digit") == "1":
            t.dtmf.setdefault(cid, _ts(event))
        elif kind == "ChannelEnteredBridge":
            t.entered.setdefault(cid, _ts(event))
    return t
