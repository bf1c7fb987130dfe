"""What the tests/unit/test_selftest_*.py files share: the example configuration,
the built-in test endpoint and two hops."""

from __future__ import annotations

from pathlib import Path

from astreinte_ari.callflow.identity import TEST_LEG
from astreinte_ari.routing.plan import DialTarget, TargetKind
from astreinte_ari.routing.targets import BUILTIN_TEST_DIAL
from tests.unit.callflow_fakes import hop

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "astreinte.example.yaml"
BUILTIN = DialTarget(TargetKind.LOCAL, "builtin", BUILTIN_TEST_DIAL)
ALICE, SUP = hop("alice", "+33612345678"), hop("sup", "sip:desk-101")
TEST_CHANNEL = TEST_LEG + "0123456789abcdef"
