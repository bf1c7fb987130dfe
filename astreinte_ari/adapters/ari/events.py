"""ARI JSON events -> the call flow's typed events. Raw dicts stop here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from astreinte_ari.callflow.causes import q850_text, soft_hangup_text
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


def pbx_time(value: Any) -> datetime | None:
    """ARI's timestamps ("2026-11-30T15:24:25.123+0000"), as aware UTC datetimes."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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
        created_at=pbx_time(data.get("creationtime")),
    )


def bridge_from_json(data: JsonDict) -> Bridge:
    channels = data.get("channels") or []
    return Bridge(id=_text(data.get("id")), channel_ids=tuple(str(c) for c in channels))


def _recording_duration(rec: JsonDict) -> float | None:
    value = rec.get("duration")
    return float(value) if isinstance(value, int | float) else None


def event_from_json(data: JsonDict) -> TelephonyEvent | None:
    """Translate one ARI event; None for events this service does not use."""
    kind = data.get("type")
    channel = data.get("channel") or {}
    at = pbx_time(data.get("timestamp"))
    if kind == "StasisStart":
        args = tuple(str(a) for a in data.get("args") or [])
        return ChannelEntered(channel=channel_from_json(channel), args=args, at=at)
    if kind == "StasisEnd":
        return ChannelLeft(channel_id=_text(channel.get("id")), at=at)
    if kind == "ChannelDestroyed":
        cause = data.get("cause")
        return ChannelHungUp(
            channel_id=_text(channel.get("id")),
            cause=cause if isinstance(cause, int) else 0,
            cause_text=_text(data.get("cause_txt")),
            at=at,
        )
    if kind == "ChannelHangupRequest":
        cause = data.get("cause")
        code = cause if isinstance(cause, int) else 0
        soft = data.get("soft") is True
        if "cause" not in data and not soft:
            # The far end hung up with no off-nominal cause: a plain BYE. 16 sent 16;
            # 22.7+/20.17+ chan_pjsip leaves it out (asterisk PR 1533).
            code = 16
        text = soft_hangup_text(code) if soft else q850_text(code)
        return HangupRequested(
            channel_id=_text(channel.get("id")), cause=code, cause_text=text, at=at, by_pbx=soft
        )
    if kind == "ChannelStateChange" and channel.get("state") == "Ringing":
        return ChannelRinging(channel_id=_text(channel.get("id")))
    if kind == "ChannelDtmfReceived":
        return DtmfReceived(
            channel_id=_text(channel.get("id")), digit=_text(data.get("digit")), at=at
        )
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
