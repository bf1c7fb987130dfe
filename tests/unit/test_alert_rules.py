"""The shipped Prometheus alert rules (docs/prometheus/): valid, tested by promtool
against series that must and must not fire them, and naming only metrics the
service exports (a renamed metric would silence a rule for good)."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.devtools.localpbx import REPO_ROOT

RULES_DIR = REPO_ROOT / "docs" / "prometheus"
RULES = RULES_DIR / "astreinte-alerts.yml"
RULE_TESTS = RULES_DIR / "astreinte-alerts.test.yml"


@pytest.fixture(scope="module")
def promtool() -> Path:
    """Debian's promtool, extracted by scripts/promtool.sh (downloaded once, cached)."""
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "promtool.sh")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"scripts/promtool.sh failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


def test_rules_are_valid(promtool: Path) -> None:
    done = subprocess.run(
        [str(promtool), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_fire_when_they_must_and_only_then(promtool: Path) -> None:
    done = subprocess.run(
        [str(promtool), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULES_DIR,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_rule_is_tested() -> None:
    rules = yaml.safe_load(RULES.read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load(RULE_TESTS.read_text())
    tested = {a["alertname"] for t in tests["tests"] for a in t["alert_rule_test"]}
    assert names == tested


def test_rules_name_only_metrics_the_service_exports() -> None:
    metrics = ServiceMetrics()
    plan = SimpleNamespace(line_name="L")  # labelled families appear once used
    metrics.on_call_closed(SimpleNamespace(call_id="c", outcome=CallOutcome.ACCEPTED, plan=plan))
    metrics.on_alert_delivery("sms", sent=False)
    metrics.on_test_call("L", passed=False, at=datetime.now(UTC))
    metrics.set_ari_connected(True)
    metrics.set_ari_connected(False)
    metrics.set_ari_connected(True)
    exported = set(re.findall(r"^(astreinte_\w+)", metrics.render().decode(), re.MULTILINE))
    used = set(re.findall(r"\b(astreinte_\w+)", RULES.read_text()))
    assert used, "no metric named in the rules?"
    assert used <= exported, sorted(used - exported)


DASHBOARD = REPO_ROOT / "docs" / "grafana" / "astreinte-dashboard.json"
LINE_LABELLED = ("astreinte_line_calls_total", "astreinte_hops_total", "astreinte_time_to_answer")


def _dashboard_queries() -> list[str]:
    import json

    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_dashboard_queries_parse_and_follow_the_instance_and_line_variables(
    promtool: Path, tmp_path: Path
) -> None:
    queries = _dashboard_queries()
    assert len(queries) >= 10
    for query in queries:
        assert 'instance=~"$instance"' in query, query
        if any(name in query for name in LINE_LABELLED):
            assert 'line=~"$line"' in query, query
    # PromQL syntax, checked by promtool: each query as a recording rule, with
    # Grafana's variables as their "All" value.
    rules = [
        {
            "record": f"dashboard:query_{n}",
            "expr": q.replace("$instance", ".*").replace("$line", ".*"),
        }
        for n, q in enumerate(queries)
    ]
    checked = tmp_path / "dashboard-queries.yml"
    checked.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [str(promtool), "check", "rules", str(checked)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboard_names_only_metrics_the_service_exports() -> None:
    metrics = ServiceMetrics()
    plan = SimpleNamespace(line_name="L")
    metrics.on_call_closed(SimpleNamespace(call_id="c", outcome=CallOutcome.ACCEPTED, plan=plan))
    metrics.on_alert_delivery("sms", sent=True)
    metrics.on_config_reload(applied=True)
    exported = metrics.render().decode()
    for query in _dashboard_queries():
        for name in re.findall(r"\b((?:astreinte|process)_[a-z_]+)", query):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert re.search(rf"^# TYPE {base}(_total)? ", exported, re.MULTILINE) or re.search(
                rf"^# TYPE {re.sub(r'_total$', '', base)} ", exported, re.MULTILINE
            ), name
