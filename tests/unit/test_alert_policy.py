"""Pure alert logic: notification sequence, escalation, late wake-ups, links, config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from astreinte_ari.alerting.links import BadToken, LinkSigner
from astreinte_ari.alerting.policy import due_steps, step_at
from astreinte_ari.config.alerting import AlertingConfig, AlertPolicy, ChannelSpec, parse_duration

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)
POLICY = AlertPolicy(renotify_every="5m", escalate_after=2, max_rounds=5)
CHANNELS = {
    "p1": (ChannelSpec(via="sms"), ChannelSpec(via="voice", after="2m")),
    "p2": (ChannelSpec(via="sms"),),
}


def _step(i: int):  # type: ignore[no-untyped-def]
    return step_at(
        i, opened_at=T0, chain=("p1", "p2"), policy=POLICY, channels_for=CHANNELS.__getitem__
    )


@pytest.mark.parametrize(
    ("index", "round_no", "person", "via", "minutes", "escalated"),
    [
        (0, 0, "p1", "sms", 0, False),
        (1, 0, "p1", "voice", 2, False),
        (2, 1, "p1", "sms", 5, False),
        (3, 1, "p1", "voice", 7, False),
        (4, 2, "p2", "sms", 10, True),  # escalation after 2 rounds
        (5, 3, "p2", "sms", 15, False),
        (6, 4, "p2", "sms", 20, False),  # last person keeps being alerted
    ],
)
def test_sequence(
    index: int, round_no: int, person: str, via: str, minutes: int, escalated: bool
) -> None:
    step = _step(index)
    assert step is not None
    assert (step.round, step.person_id, step.channel.via) == (round_no, person, via)
    assert step.at == T0 + timedelta(minutes=minutes)
    assert step.escalated is escalated


def test_sequence_ends_after_max_rounds() -> None:
    assert _step(7) is None


@pytest.mark.parametrize(
    ("next_step", "minutes", "due", "upcoming"),
    [
        (0, 0, [0], 1),
        (1, 1, [], 1),
        (1, 2, [1], 2),
        (2, 16, [5], 6),  # woke up late: only the latest due round, no burst
        (7, 100, [], None),
    ],
)
def test_due_steps(next_step: int, minutes: int, due: list[int], upcoming: int | None) -> None:
    steps, nxt = due_steps(
        next_step,
        T0 + timedelta(minutes=minutes),
        opened_at=T0,
        chain=("p1", "p2"),
        policy=POLICY,
        channels_for=CHANNELS.__getitem__,
    )
    assert [s.index for s in steps] == due
    assert (nxt.index if nxt else None) == upcoming


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), (3, 180)]
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "-1m", True, "m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown alert policy"):
        AlertingConfig.model_validate({"missed_calls": {"policy": "nope"}})


def test_links_sign_verify_tamper_expire() -> None:
    signer = LinkSigner(b"k" * 32)
    token = signer.sign("ack", "abc123", "p1", T0 + timedelta(hours=1))
    claim = signer.verify(token, "ack", T0)
    assert (claim.alert_id, claim.person_id) == ("abc123", "p1")
    body, mac = token.split(".")
    forged = LinkSigner(b"x" * 32).sign("ack", "abc123", "p1", T0 + timedelta(hours=1))
    for bad in (
        f"{body}.{mac[:-2]}AA",
        f"{body[:-2]}xx.{mac}",
        forged,
        "nonsense",
        token.replace(".", ""),
    ):
        with pytest.raises(BadToken):
            signer.verify(bad, "ack", T0)
    with pytest.raises(BadToken, match="purpose"):
        signer.verify(token, "vm", T0)
    with pytest.raises(BadToken, match="expired"):
        signer.verify(token, "ack", T0 + timedelta(hours=1))
    with pytest.raises(ValueError):
        LinkSigner(b"short")
