"""Webhook secrets: read from the environment or files at start, named when missing,
never shown; `doctor` reports a missing one before a restart would fail on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari.adapters.notify.webhook import build_publisher, resolve_target
from astreinte_ari.app.doctor import check_secrets
from astreinte_ari.config.alerting import WebhookConfig
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.secrets import SecretError

REPO = Path(__file__).resolve().parents[2]
SLACK_URL = "https://hooks.slack.com/services/T0/B0/very-secret-part"


def test_doctor_names_missing_webhook_secrets_of_the_example(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASTREINTE_SLACK_URL", raising=False)
    config = load_config(REPO / "config" / "astreinte.example.yaml")
    failed = {c.name: c for c in check_secrets(config) if not c.ok}
    assert "environment variable ASTREINTE_SLACK_URL" in failed["webhook ops-chat"].detail
    assert "alerting.webhooks.ops-chat" in (failed["webhook ops-chat"].fix or "")
    assert "/etc/astreinte/webhook-tickets.secret" in failed["webhook tickets"].detail

    monkeypatch.setenv("ASTREINTE_SLACK_URL", SLACK_URL)
    failed = {c.name: c for c in check_secrets(config) if not c.ok}
    assert "webhook ops-chat" not in failed
    assert all("very-secret-part" not in c.detail for c in check_secrets(config))


def test_targets_read_env_and_files_relative_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hook.secret").write_text("s3cret-from-file\n")
    monkeypatch.setenv("T_SLACK", SLACK_URL + "/")
    monkeypatch.setenv("T_MATRIX", "syt_token")
    hooks = {
        "tickets": WebhookConfig(
            kind="generic", url="https://t.example/h", secret_file="hook.secret"
        ),  # type: ignore[arg-type]
        "chat": WebhookConfig(kind="slack", url_env="T_SLACK"),
        "room": WebhookConfig(
            kind="matrix", url="https://m.example", room="!r:m.example", token_env="T_MATRIX"
        ),
    }
    tickets = resolve_target("tickets", hooks["tickets"], tmp_path)
    assert tickets.secret == b"s3cret-from-file" and tickets.url == "https://t.example/h"
    assert resolve_target("chat", hooks["chat"], tmp_path).url == SLACK_URL
    room = resolve_target("room", hooks["room"], tmp_path)
    assert (room.token, room.room) == ("syt_token", "!r:m.example")
    assert "secret" not in repr(tickets) and "very-secret-part" not in repr(room)
    publisher = build_publisher(hooks, tmp_path)
    assert publisher.wants("shift_started") and publisher.in_flight() == 0


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ({"kind": "slack", "url_env": "T_URL"}, {},
         "URL of webhook w not found: set environment variable T_URL or give url_file"),
        ({"kind": "teams", "url_env": "T_URL"}, {"T_URL": "hooks.example/very-secret-part"},
         "URL of webhook w from environment variable T_URL is not an http(s) URL"),
        ({"kind": "generic", "url": "https://t.example", "secret_env": "T_S"}, {},
         "signing secret of webhook w not found: set environment variable T_S or give secret_file"),
        ({"kind": "matrix", "url": "https://m.example", "room": "#a:m", "token_file": "no.such"},
         {}, "cannot read secret file"),
    ],
)  # fmt: skip
def test_missing_or_bad_secret_is_named_never_shown(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: dict[str, str],
    env: dict[str, str],
    message: str,
) -> None:
    for name in ("T_URL", "T_S"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SecretError) as info:
        build_publisher({"w": WebhookConfig.model_validate(spec)}, tmp_path)
    assert message in str(info.value)
    assert "very-secret-part" not in str(info.value)


def test_extra_headers_take_env_values_and_name_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = WebhookConfig.model_validate(
        {
            "kind": "generic",
            "url": "https://t.example",
            "secret_env": "T_S",
            "headers": {"Authorization": "Bearer ${T_API}", "X-Tenant": "durand"},
        }
    )
    monkeypatch.setenv("T_S", "s")
    monkeypatch.delenv("T_API", raising=False)
    with pytest.raises(SecretError) as info:
        resolve_target("w", spec, tmp_path)
    assert "environment variable T_API (header Authorization of webhook w) is not set" in str(
        info.value
    )
    monkeypatch.setenv("T_API", "api-token")
    target = resolve_target("w", spec, tmp_path)
    assert target.headers == (("Authorization", "Bearer api-token"), ("X-Tenant", "durand"))
    assert "api-token" not in repr(target)
