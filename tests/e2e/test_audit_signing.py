"""The running service signs the audit chain: a call, a clean stop, then an auditor
checks the checkpoints with the public key alone and the service log as witness."""

from __future__ import annotations

from pathlib import Path

import pytest

from astreinte_ari import cli
from astreinte_ari.adapters.store.audit_checkpoints import WITNESS_MARK, generate_key
from tests.e2e.rig import LINE_FULL, P1, E2ERig, sqlite_service
from tests.rig.crowd import CallPlan
from tests.rig.trail_check import Expect, assert_trail_matches_wire

pytestmark = pytest.mark.e2e


def test_the_service_signs_checkpoints_an_auditor_verifies_with_the_public_key(
    e2e_rig: E2ERig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "keys" / "audit-signing.key"
    public, _ = generate_key(key)
    witness = tmp_path / "witness.jsonl"
    extra = f'audit: {{signing_key_file: "{key}", witness_file: "{witness}"}}'
    with sqlite_service(e2e_rig, tmp_path, extra_yaml=extra) as service:
        phone = e2e_rig.agent_phone(P1, "accept", ring_ms=300, dtmf_after_ms=800)
        crowd = e2e_rig.callers(LINE_FULL, [CallPlan("+33198900001", hang_up_after_answer_ms=9000)])
        try:
            crowd.finish(40)
        finally:
            assert phone.stop() == 0, phone.run.output()
        assert service.engine is not None
        assert_trail_matches_wire(
            service.engine, crowd.wire(), Expect.accepted("p1"), agents=phone.wire(), did=LINE_FULL
        )
        log_path = service.log_path
        db_url = service.db_url
    # The clean stop signed what the call wrote; the log and the file are witnesses.
    assert WITNESS_MARK in log_path.read_text()
    assert witness.read_text().count(WITNESS_MARK) >= 1
    capsys.readouterr()
    code = cli.main(
        [
            "audit",
            "verify",
            "--url",
            db_url,
            "--public-key",
            str(public),
            "--witness",
            str(log_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "checkpoint(s) checked" in out and "compared with the witness" in out
