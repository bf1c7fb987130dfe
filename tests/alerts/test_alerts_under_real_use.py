"""Alerts under real use: long accented line names and long public URLs in an SMS,
links behind a public_url with a path, shift-start texts in English, the cover
closing the supervisor's alert, email dates with their zone.

Real local servers (aiosmtpd with STARTTLS, an HTTP SMS gateway), the alert
engine on the real database, the links endpoint answering real HTTP requests.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp

from astreinte_ari.adapters.notify.sms_text import segments
from astreinte_ari.devtools.localpbx import free_port
from tests.alerts.conftest import FakeClock, Mailbox, SmsGateway
from tests.alerts.helpers import P2, SUP, closed_call, start_without_telephony, write_config

WAV = b"RIFF" + b"\0" * 40 + b"voicemail"
# 60 characters, with letters GSM-7 lacks (â ç ô û) and one it has (é).
LONG_NAME = "Chaufferie et ventilation du bâtiment côté façade, sûretés é"
SHIFT = (
    "[{team: t, rota: primary, before: 30m, ack_within: 20m, supervisor: sup,"
    " replacement: p2, language: en}]"
)


def _voicemail(recordings: Path) -> Path:
    path = recordings / "2026" / "03" / "call.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)
    return path


def _links(text: str) -> dict[str, str]:
    return {m.group(2): m.group(1) for m in re.finditer(r"(http://\S+/(ack|vm)/\S+)", text)}


async def _links_work(links: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(links["vm"]) as response:
            assert response.status == 200, await response.text()
            assert await response.read() == WAV
        async with http.post(links["ack"]) as response:
            assert response.status == 200, await response.text()


async def test_a_long_accented_line_name_fits_two_gsm7_segments_and_both_links_work(
    db_url: str, tmp_path: Path, mailbox: Mailbox, sms_gateway: SmsGateway
) -> None:
    assert len(LONG_NAME) == 60
    port = free_port()
    public = f"http://127.0.0.1:{port}/services/astreinte-telephonique/liens-d-acquittement"
    config = write_config(
        tmp_path,
        db_url=db_url,
        smtp_port=mailbox.port,
        ca_file=mailbox.ca_file,
        sms_url=sms_gateway.url,
        links_port=port,
        line_name=LONG_NAME,
        public_url=public,
    )
    clock = FakeClock()
    alerting = await start_without_telephony(config, clock)
    try:
        engine = alerting.engine
        call = closed_call(config, clock(), _voicemail(config.recordings_dir))
        alert_id = await engine.open_missed_call(call)
        await engine.drain()
        [sms] = sms_gateway.texts_to("+33610000001")
        encoding, count = segments(sms)
        assert (encoding, count) == ("gsm7", 2), (encoding, count, len(sms), sms)
        assert "batiment coté facade, suretés" in sms  # the accents GSM-7 lacks, dropped
        links = _links(sms)
        assert set(links) == {"ack", "vm"} and all(
            link.startswith(public) for link in links.values()
        )
        await _links_work(links)
        alert = engine.store.get(alert_id or "")
        assert alert is not None and (alert.state, alert.acked_by) == ("acked", "p1")
        # The email of the same round: its date says its zone (RFC 5322, not -0000).
        [mail] = mailbox.messages
        assert mail["Date"].endswith("+0000"), mail["Date"]
        assert parsedate_to_datetime(mail["Date"]).tzinfo is not None
    finally:
        await alerting.close()


async def test_links_work_behind_a_public_url_with_a_path(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    """public_url "https://host/ack" once produced /ack/ack/<token> links that 404ed
    unless a proxy stripped the prefix: the endpoint now serves both."""
    port = free_port()
    config = write_config(
        tmp_path,
        db_url=db_url,
        sms_url=sms_gateway.url,
        links_port=port,
        public_url=f"http://127.0.0.1:{port}/ack",
    )
    clock = FakeClock()
    alerting = await start_without_telephony(config, clock)
    try:
        call = closed_call(config, clock(), _voicemail(config.recordings_dir))
        await alerting.engine.open_missed_call(call)
        await alerting.engine.drain()
        [sms] = sms_gateway.texts_to("+33610000001")
        links = _links(sms)
        assert links["ack"].startswith(f"http://127.0.0.1:{port}/ack/ack/")
        await _links_work(links)  # as a proxy that forwards the prefix would
        stripped = {
            k: v.replace("/ack/ack/", "/ack/").replace("/ack/vm/", "/vm/") for k, v in links.items()
        }
        async with aiohttp.ClientSession() as http, http.get(stripped["vm"]) as response:
            assert response.status == 200  # as a proxy that strips it would
    finally:
        await alerting.close()


async def test_english_shift_start_texts_and_the_cover_closes_the_supervisors_alert(
    db_url: str, tmp_path: Path, sms_gateway: SmsGateway
) -> None:
    config = write_config(
        tmp_path,
        db_url=db_url,
        sms_url=sms_gateway.url,
        links_port=free_port(),
        shift_start=SHIFT,
        primary="[p3, p1]",
        channels="{p1: [{via: sms}], p2: [{via: sms}], p3: [{via: sms}], sup: [{via: sms}]}",
    )
    clock = FakeClock()
    clock.now = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    alerting = await start_without_telephony(config, clock)
    try:
        clock.advance(minutes=30)
        await alerting.fire_due()
        await alerting.engine.drain()
        [first] = sms_gateway.texts_to("+33610000003")
        assert first.startswith("Your primary on-call shift starts"), first
        clock.advance(minutes=20)  # nobody confirmed: replacement and supervisor alerted
        await alerting.fire_due()
        await alerting.engine.drain()
        [cover] = sms_gateway.texts_to(P2)
        [missed] = sms_gateway.texts_to(SUP)
        assert cover.startswith("The primary shift starting") and "confirm" in cover, cover
        assert missed.startswith("The primary shift starting") and "not confirmed" in missed
        async with aiohttp.ClientSession() as http, http.post(_links(cover)["ack"]) as response:
            assert response.status == 200
        # The supervisor's alert has its answer: no more reminders to the supervisor.
        store = alerting.engine.store
        supervisor_alert = next(a for a in store.list(open_only=False) if a.kind == "shift_missed")
        assert supervisor_alert.state == "closed"
        assert any(
            e[1] == "closed" and "p2" in (e[4] or "") for e in store.events(supervisor_alert.id)
        )
        clock.advance(minutes=30)
        await alerting.fire_due()
        await alerting.engine.drain()
        assert len(sms_gateway.texts_to(SUP)) == 1
    finally:
        await alerting.close()
