"""ARI JSON -> typed events: the caller's hangup request keeps its Q.850 cause."""

from __future__ import annotations

from typing import Any

import pytest

from astreinte_ari.adapters.ari.events import event_from_json
from astreinte_ari.callflow.telephony import ChannelHungUp, HangupRequested


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"cause": 16}, HangupRequested("c1", 16, "Normal Clearing")),
        # A soft request's "cause" is Asterisk's AST_SOFTHANGUP_* reason, not Q.850
        # (main/channel.c ast_softhangup): 4 = the PBX shutting down, 32 = on request.
        (
            {"cause": 4, "soft": True},
            HangupRequested("c1", 4, "the PBX is shutting down", by_pbx=True),
        ),
        (
            {"cause": 32, "soft": True},
            HangupRequested("c1", 32, "hung up on request (ARI, AMI or the CLI)", by_pbx=True),
        ),
        ({"cause": 99}, HangupRequested("c1", 99, "cause 99")),
        # No cause, not soft: the far end's plain BYE as Asterisk 22.7+ reports it.
        ({}, HangupRequested("c1", 16, "Normal Clearing")),
        ({"soft": True}, HangupRequested("c1", 0, "hung up by the PBX (reason 0)", by_pbx=True)),
        ({"cause": "16; DROP"}, HangupRequested("c1", 0, "Unknown")),  # not an int: ignored
    ],
)
def test_hangup_request(payload: dict[str, Any], expected: HangupRequested) -> None:
    data = {"type": "ChannelHangupRequest", "channel": {"id": "c1"}, **payload}
    assert event_from_json(data) == expected


def test_channel_destroyed_keeps_asterisks_text() -> None:
    data = {"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 17,
            "cause_txt": "User busy"}  # fmt: skip
    assert event_from_json(data) == ChannelHungUp("c1", 17, "User busy")
