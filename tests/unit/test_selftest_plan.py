"""Test calls, the pure parts: the test plan, the endpoint it dials, the outcome, and
the configuration (every mistake named with its line).

The call flow: test_selftest_call.py; alerts, metrics, schedule and the HTTP
trigger: test_selftest_edges.py; the real-PBX path: tests/e2e/test_test_calls.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, outcome_of_test_call
from astreinte_ari.config.loader import ConfigError, load_config
from astreinte_ari.routing.plan import DialTarget, FinalAction, TargetKind
from astreinte_ari.routing.selftest import decision_text, selftest_plan, selftest_target
from astreinte_ari.routing.targets import refusal
from tests.unit.callflow_fakes import plan
from tests.unit.selftest_helpers import ALICE, BUILTIN, EXAMPLE, SUP


@pytest.mark.parametrize(
    ("hops", "labels", "decision"),
    [
        (
            (ALICE,),
            ["alice [test call: would ring alice +33612345678]"],
            "alice: alice +33612345678",
        ),
        (
            (ALICE, SUP),
            [
                "alice [test call: would ring alice +33612345678]",
                "sup [test call: would ring sup sip:desk-101]",
            ],
            "alice: alice +33612345678, then sup: sup sip:desk-101",
        ),
        ((), [], "nobody to ring"),
    ],
)
def test_the_test_plan_is_the_real_one_aimed_at_the_endpoint(
    hops: tuple[Any, ...], labels: list[str], decision: str
) -> None:
    real = plan(*hops, final=FinalAction.VOICEMAIL)
    test = selftest_plan(real, BUILTIN, 12)
    assert [h.label for h in test.hops] == labels
    assert {h.person_id for h in test.hops} <= {"test-endpoint"}  # on nobody's record
    assert [h.person_name for h in test.hops] == [
        f"test endpoint instead of {h.person_name}" for h in real.hops
    ]
    assert {h.target for h in test.hops} <= {BUILTIN}
    assert {h.ring_timeout_s for h in test.hops} <= {12}
    assert test.final is FinalAction.HANGUP  # no voicemail: nobody reached = failed
    assert test.test_call and not real.test_call
    assert (test.announcement, test.period) == (real.announcement, real.period)
    assert decision_text(real) == decision


def test_the_test_endpoint_is_what_the_configuration_says() -> None:
    config = load_config(EXAMPLE)
    spec = config.lines["+33180000000"].test_call
    assert spec is not None and spec.minutes() == (3 * 60 + 30,)
    assert selftest_target(config, spec) == BUILTIN
    sip = spec.model_copy(update={"endpoint": "sip:loge-100"})
    assert selftest_target(config, sip).dial_string == "PJSIP/loge-100"
    number = spec.model_copy(update={"endpoint": "+33612000000"})
    assert selftest_target(config, number).dial_string == "PJSIP/+33612000000@operator"


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        (BUILTIN, None),
        (DialTarget(TargetKind.LOCAL, "builtin", "Local/s@elsewhere/n"), "not the built-in"),
        (DialTarget(TargetKind.LOCAL, "x", "PJSIP/+33899000000@operator"), "not the built-in"),
    ],
)
def test_only_the_builtin_local_endpoint_may_be_dialled(
    target: DialTarget, refused: str | None
) -> None:
    why = refusal(load_config(EXAMPLE), target)
    assert (why is None) if refused is None else (refused in (why or "")), why


@pytest.mark.parametrize(
    ("outcome", "test"),
    [
        (CallOutcome.ACCEPTED, CallOutcome.TEST_PASSED),
        (CallOutcome.CONNECTED, CallOutcome.TEST_PASSED),
        (CallOutcome.NO_ONE, CallOutcome.TEST_FAILED),
        (CallOutcome.ABANDONED, CallOutcome.TEST_FAILED),
        (CallOutcome.FAILED, CallOutcome.TEST_FAILED),
        (CallOutcome.VOICEMAIL, CallOutcome.TEST_FAILED),
    ],
)
def test_a_test_call_passes_only_when_bridged(outcome: CallOutcome, test: CallOutcome) -> None:
    assert outcome_of_test_call(outcome) is test


# -- configuration: every mistake named with its line ----------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"),
    [
        ('at: ["03:30"]', 'at: ["25:30"]', "test_call.at", "not a valid time"),
        ('at: ["03:30"]', "at: []", "test_call.at", "at least one time"),
        ("alert: [claire]", "alert: [alice, zoe]", "test_call.alert[1]", "unknown person 'zoe'"),
        ("alert: [claire]", "alert: []", "test_call.alert", "at least one person"),
        ("endpoint: builtin", 'endpoint: "+33899000000"', "test_call.endpoint", "not allowed"),
        ("endpoint: builtin", "endpoint: PJSIP/x", "test_call.endpoint", "'builtin'"),
        ("timeout: 45   ", "timeout: 5    ", "test_call.timeout", "greater than or equal"),
        ("policy: missed_call ", "policy: nightly     ", "test_call.policy", "nightly"),
    ],
)
def test_test_call_mistakes_name_file_line_and_path(
    tmp_path: Path, old: str, new: str, path: str, fragment: str
) -> None:
    text = EXAMPLE.read_text()
    assert text.count(old) >= 1
    # Only the test_call block: the first occurrence after its key.
    start = text.index("    test_call:")
    edited = text[:start] + text[start:].replace(old, new, 1)
    target = tmp_path / "astreinte.yaml"
    target.write_text(edited)
    with pytest.raises(ConfigError) as info:
        load_config(target)
    dotted = f'lines."+33180000000".{path}'
    match = [i for i in info.value.issues if i.path == dotted and fragment in i.message]
    assert match, info.value.issues
    line = next(n for n, row in enumerate(edited.splitlines(), 1) if new.strip() in row)
    assert match[0].line == line


def test_a_test_call_needs_alerting(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    cut = text.index("\nalerting:")
    target = tmp_path / "astreinte.yaml"
    target.write_text(text[:cut] + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(target)
    assert any(
        i.path == 'lines."+33180000000".test_call' and "configure alerting" in i.message
        for i in info.value.issues
    ), info.value.issues
