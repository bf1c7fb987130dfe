"""ARI JSON events -> the call flow's typed events. Raw dicts stop here."""

from __future__ import annotations

from typing import Any

from astreinte_ari.callflow.telephony import (
    AppReplaced,
    Bridge,
    Channel,
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    ChannelRinging,
    DtmfReceived,
    HangupRequested,
    PlaybackFinished,
    RecordingFinished,
    TelephonyEvent,
)

JsonDict = dict[str, Any]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def channel_from_json(data: JsonDict) -> Channel:
    caller = data.get("caller") or {}
    dialplan = data.get("dialplan") or {}
    app, args = "", ()
    if dialplan.get("app_name") == "Stasis":
        # app_data is "app,arg1,arg2": Asterisk 16 reports it for channels in Stasis.
        app, *rest = _text(dialplan.get("app_data")).split(",")
        args = tuple(rest)
    return Channel(
        id=_text(data.get("id")),
        name=_text(data.get("name")),
        state=_text(data.get("state")),
        caller_number=_text(caller.get("number")),
        caller_name=_text(caller.get("name")),
        exten=_text(dialplan.get("exten")),
        context=_text(dialplan.get("context")),
        stasis_app=app,
        stasis_args=args,
    )


def bridge_from_json(data: JsonDict) -> Bridge:
    channels = data.get("channels") or []
    return Bridge(id=_text(data.get("id")), channel_ids=tuple(str(c) for c in channels))


def _recording_duration(rec: JsonDict) -> float | None:
    value = rec.get("duration")
    return float(value) if isinstance(value, int | float) else None


# Asterisk's own texts (ast_cause2str) for the causes a caller's hangup carries;
# ChannelHangupRequest has the code only, ChannelDestroyed has both.
_Q850_TEXTS = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    127: "Interworking, unspecified",
}


def q850_text(cause: int) -> str:
    return _Q850_TEXTS.get(cause, f"cause {cause}")


def event_from_json(data: JsonDict) -> TelephonyEvent | None:
    """Translate one ARI event; None for events this service does not use."""
    kind = data.get("type")
    channel = data.get("channel") or {}
    if kind == "StasisStart":
        args = tuple(str(a) for a in data.get("args") or [])
        return ChannelEntered(channel=channel_from_json(channel), args=args)
    if kind == "StasisEnd":
        return ChannelLeft(channel_id=_text(channel.get("id")))
    if kind == "ChannelDestroyed":
        cause = data.get("cause")
        return ChannelHungUp(
            channel_id=_text(channel.get("id")),
            cause=cause if isinstance(cause, int) else 0,
            cause_text=_text(data.get("cause_txt")),
        )
    if kind == "ChannelHangupRequest":
        cause = data.get("cause")
        code = cause if isinstance(cause, int) else 0
        if "cause" not in data and not data.get("soft"):
            # The far end hung up with no off-nominal cause: a plain BYE. 16 sent 16;
            # 22.7+/20.17+ chan_pjsip leaves it out (asterisk PR 1533).
            code = 16
        return HangupRequested(
            channel_id=_text(channel.get("id")), cause=code, cause_text=q850_text(code)
        )
    if kind == "ChannelStateChange" and channel.get("state") == "Ringing":
        return ChannelRinging(channel_id=_text(channel.get("id")))
    if kind == "ChannelDtmfReceived":
        return DtmfReceived(channel_id=_text(channel.get("id")), digit=_text(data.get("digit")))
    if kind == "PlaybackFinished":
        playback = data.get("playback") or {}
        return PlaybackFinished(
            playback_id=_text(playback.get("id")), failed=playback.get("state") == "failed"
        )
    if kind in ("RecordingFinished", "RecordingFailed"):
        rec = data.get("recording") or {}
        return RecordingFinished(
            name=_text(rec.get("name")),
            duration_s=_recording_duration(rec),
            failed=kind == "RecordingFailed",
            cause=_text(rec.get("cause")),
        )
    if kind == "ApplicationReplaced":
        return AppReplaced()
    return None
