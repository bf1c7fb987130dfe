"""Webhook configuration: each mistake is refused with file, line and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari.config.loader import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "config" / "astreinte.example.yaml").read_text(encoding="utf-8")
TICKETS = "      kind: generic                   # JSON + X-Astreinte-Signature (HMAC-SHA256)"
SLACK = "      url_env: ASTREINTE_SLACK_URL    # the incoming-webhook URL is a secret"


def test_example_webhooks_load_without_their_secrets() -> None:
    config = load_config(REPO / "config" / "astreinte.example.yaml")
    assert config.alerting is not None
    hooks = config.alerting.webhooks
    assert {n: h.kind for n, h in hooks.items()} == {"tickets": "generic", "ops-chat": "slack"}
    assert hooks["ops-chat"].wants("call_missed") and not hooks["ops-chat"].wants("shift_started")
    assert hooks["tickets"].backoff == 30 and hooks["tickets"].retries == 4


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        (TICKETS, "      kind: jira", "alerting.webhooks.tickets.kind", "'generic'"),
        ("      secret_file: /etc/astreinte/webhook-tickets.secret", "",
         "alerting.webhooks.tickets", "secret_env or secret_file"),
        (SLACK, '      url: "https://hooks.slack.com/services/T0/B0/xyz"',
         "alerting.webhooks.ops-chat", "is a secret: give url_env or url_file"),
        (SLACK, "", "alerting.webhooks.ops-chat", "exactly one of url, url_env, url_file"),
        ("url: https://tickets.fromagerie-durand.fr/hooks/astreinte", "url: ftp://tickets",
         "alerting.webhooks.tickets.url", "not an http(s) URL"),
        ("events: [call_missed, voicemail_left, shift_not_acknowledged]",
         "events: [call_missed, voicemail_lft]", "alerting.webhooks.ops-chat.events[1]",
         "'voicemail_left'"),
        ("events: [call_missed, voicemail_left, shift_not_acknowledged]", "events: []",
         "alerting.webhooks.ops-chat.events", "at least one event"),
        ("      retries: 4 ", "      retries: 40 ", "alerting.webhooks.tickets.retries", "10"),
        ("    ops-chat:\n", "    Ops Chat:\n", "alerting.webhooks", "webhook name 'Ops Chat'"),
        ("      backoff: 30s", '      headers: {X-Astreinte-Signature: "forged"}',
         "alerting.webhooks.tickets.headers", "set by the service itself"),
        ("      backoff: 30s", '      headers: {"Bad Name": "x"}',
         "alerting.webhooks.tickets.headers", "not an HTTP header name"),
    ],
)  # fmt: skip
def test_webhook_mistakes_name_file_line_and_path(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    assert old in EXAMPLE
    text = EXAMPLE.replace(old, new)
    file = tmp_path / "astreinte.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    issues = info.value.issues
    assert [(i.path, fragment in i.message) for i in issues] == [(path, True)], issues
    issue = issues[0]
    assert issue.file.endswith("astreinte.yaml") and issue.line is not None
    # The line points into the webhooks block, not at the top of the file.
    assert issue.line > text.splitlines().index("  webhooks:"), issue


def test_matrix_needs_room_and_token(tmp_path: Path) -> None:
    text = EXAMPLE + "    chat:\n      kind: matrix\n      url: https://matrix.example\n"
    file = tmp_path / "astreinte.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    [issue] = info.value.issues
    assert issue.path == "alerting.webhooks.chat" and "room" in issue.message
    assert issue.line == len(text.splitlines()) - 2  # the line of `chat:`
    file.write_text(text + '      room: "!abc:matrix.example"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert "token_env or token_file" in str(info.value.issues[0])
    file.write_text(text + '      room: "!abc:matrix.example"\n      token_env: T\n')
    assert load_config(file).alerting.webhooks["chat"].room == "!abc:matrix.example"  # type: ignore[union-attr]


def test_misspelt_webhook_key_gets_a_suggestion(tmp_path: Path) -> None:
    old = "      secret_file: /etc/astreinte/webhook-tickets.secret"
    text = EXAMPLE.replace(old, old.replace("secret_file", "secret_fil"))
    file = tmp_path / "astreinte.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    paths = {i.path: i.message for i in info.value.issues}
    assert "did you mean 'secret_file'" in paths["alerting.webhooks.tickets.secret_fil"], paths
