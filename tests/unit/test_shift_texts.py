"""Shift-start texts and acknowledgement pages in French and English, and the
top-level `language` (the default of documents and shift-start texts)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from astreinte_ari.adapters.notify.email import EmailNotifier
from astreinte_ari.alerting.ack_page import acked_page, confirm_page, handled_page
from astreinte_ari.alerting.messages import subject_and_text
from astreinte_ari.alerting.ports import AlertMessage, Recipient
from astreinte_ari.alerting.shifts import _team_language
from astreinte_ari.config.alerting import SmtpConfig
from astreinte_ari.config.loader import ConfigError, load_config
from tests.unit.html_doc import parse_html
from tests.unit.statement_scenario import CONFIG

SHIFT = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # Fri 4 Dec 18:00 in Paris


def _alert(kind: str, language: str | None, state: str = "open") -> Any:
    return SimpleNamespace(
        id="abcdef1234567890", kind=kind, state=state, language=language, rota="primary",
        shift_start=SHIFT, line_name="Maintenance", opened_at=SHIFT, caller_number=None,
        voicemail_path=None, call_id=None, is_open=state in ("scheduled", "open"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "language", "subject", "text"),
    [
        ("shift_start", "fr", "[Astreinte] Prise de poste à confirmer",
         "Votre astreinte primary commence le 04/12 18:00 : confirmez. [abcdef12]"),
        ("shift_start", "en", "[On-call] Please confirm your shift",
         "Your primary on-call shift starts 4 Dec 18:00: confirm. [abcdef12]"),
        ("shift_start", None, "[Astreinte] Prise de poste à confirmer", "Votre astreinte"),
        ("shift_cover", "fr", "[Astreinte] Remplacement demandé",
         "La prise de poste primary du 04/12 18:00 n'a pas été confirmée"),
        ("shift_cover", "en", "[On-call] Cover requested",
         "The primary shift starting 4 Dec 18:00 was not confirmed"),
        ("shift_missed", "fr", "[Astreinte] Prise de poste non confirmée",
         "Prise de poste primary du 04/12 18:00 non confirmée (Maintenance)"),
        ("shift_missed", "en", "[On-call] Shift not confirmed",
         "The primary shift starting 4 Dec 18:00 was not confirmed (Maintenance)"),
    ],
)  # fmt: skip
def test_shift_texts_in_each_language(
    kind: str, language: str | None, subject: str, text: str
) -> None:
    got_subject, got_text = subject_and_text(_alert(kind, language), "Europe/Paris")
    assert got_subject == subject
    assert got_text.startswith(text), got_text


@pytest.mark.parametrize(
    ("lines", "default", "expected"),
    [
        ({"+331": ("t", "en")}, "fr", "en"),  # the team's first line
        ({"+331": ("other", "en")}, "fr", "fr"),  # no line of the team: the default
        ({"+331": ("other", "fr")}, "en", "en"),
        ({}, "en", "en"),
    ],
)
def test_shift_language_falls_back_to_the_configuration(
    lines: dict[str, tuple[str, str]], default: str, expected: str
) -> None:
    config = SimpleNamespace(
        language=default,
        lines={did: SimpleNamespace(team=team, language=lang) for did, (team, lang) in
               lines.items()},
    )  # fmt: skip
    assert _team_language(config, "t") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "language", "button", "done"),
    [
        ("shift_start", "fr", "Je confirme ma prise de poste", "Prise de poste confirmée. Merci."),
        ("shift_start", "en", "I confirm my shift", "Shift confirmed. Thank you."),
        ("shift_cover", "en", "I will cover this shift", "Cover confirmed"),
        ("missed_call", "fr", "Je prends en charge", "Alerte acquittée. Merci."),
        ("missed_call", "en", "I am handling it", "Alert acknowledged. Thank you."),
    ],
)  # fmt: skip
def test_ack_pages_speak_the_alerts_language(
    kind: str, language: str, button: str, done: str
) -> None:
    alert = _alert(kind, language)
    subject, text = subject_and_text(alert, "Europe/Paris")
    page = parse_html(confirm_page(alert, "Europe/Paris"))
    assert page.lang == language and page.title == subject
    assert ("h1", subject) in page.headings and page.paragraphs == [text]
    assert button in page.text and kind not in page.text  # no raw key
    page = parse_html(acked_page(alert, "Europe/Paris"))
    assert page.lang == language and page.paragraphs[0].startswith(done)
    expired = parse_html(handled_page(_alert(kind, language, "expired"), "Europe/Paris"))
    assert expired.paragraphs == [
        "Cette alerte est déjà traitée (expirée : le délai est passé)."
        if language == "fr"
        else "This alert is already handled (expired: the deadline has passed)."
    ]


def test_top_level_language(tmp_path: Path) -> None:
    path = tmp_path / "astreinte.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    assert load_config(path).language == "fr"  # the default
    path.write_text("language: en\n" + CONFIG, encoding="utf-8")
    assert load_config(path).language == "en"
    path.write_text("language: de\n" + CONFIG, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert f"{path}:1: language:" in str(error.value)


@pytest.mark.parametrize(
    ("kind", "language", "ack_line", "vm_line"),
    [
        ("shift_start", "fr", "Confirmer: https://h/a/x", None),
        ("shift_start", "en", "Confirm: https://h/a/x", None),
        ("missed_call", "fr", "Acquitter: https://h/a/x", "Message vocal: https://h/v/y"),
        ("missed_call", "en", "Acknowledge: https://h/a/x", "Voicemail: https://h/v/y"),
    ],
)
def test_email_links_are_labelled_in_the_alerts_language(
    kind: str, language: str, ack_line: str, vm_line: str | None
) -> None:
    notifier = EmailNotifier(SmtpConfig(host="smtp.invalid", sender="a@b.invalid"), None)
    message = AlertMessage(
        alert_id="abcdef12", kind=kind, subject="s", text="the text", language=language,
        ack_url="https://h/a/x", voicemail_url="https://h/v/y" if vm_line else None,
    )  # fmt: skip
    mail = notifier.build(Recipient("p1", "P One", "+33611111111", "p1@b.invalid"), message)
    body = mail.get_content().splitlines()
    assert body == ["the text", "", ack_line, *([vm_line] if vm_line else [])]
