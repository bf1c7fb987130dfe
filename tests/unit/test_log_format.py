"""Human logs carry an explicit zone; on the journal they carry the syslog priority
instead of a time; JSON is unchanged."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from astreinte_ari.cli.log_format import (
    JournalFormatter,
    JsonFormatter,
    TextFormatter,
    stderr_is_journal,
    syslog_priority,
)


def _record(level: int, message: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("disk on fire")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("astreinte_ari.app.compose", level, __file__, 1, message, (), exc_info)


@pytest.fixture
def paris(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_text_times_carry_their_utc_offset(paris: None) -> None:
    record = _record(logging.INFO, "astreinte ready")
    line = TextFormatter().format(record)
    m = re.fullmatch(
        r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) INFO astreinte_ari.app.compose: "
        r"astreinte ready",
        line,
    )
    assert m, line
    stamp = datetime.fromisoformat(m.group(1))
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() in (3600, 7200)
    assert abs(stamp.timestamp() - record.created) < 0.001


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
    ],
)
def test_syslog_priority_of_each_level(level: int, priority: int) -> None:
    assert syslog_priority(level) == priority
    line = JournalFormatter().format(_record(level, "x"))
    assert line == f"<{priority}>{logging.getLevelName(level)} astreinte_ari.app.compose: x"


def test_every_line_of_a_traceback_keeps_the_priority_and_no_line_has_a_time() -> None:
    text = JournalFormatter().format(_record(logging.ERROR, "write failed", exc=True))
    lines = text.split("\n")
    assert len(lines) > 3 and all(line.startswith("<3>") for line in lines), text
    assert "RuntimeError: disk on fire" in text
    assert not re.search(r"\d\d:\d\d:\d\d", text)


def test_json_is_unchanged() -> None:
    data = json.loads(JsonFormatter().format(_record(logging.WARNING, "hé\nho")))
    assert data["level"] == "WARNING" and data["message"] == "hé\nho"
    assert data["time"].endswith("Z")


def test_journal_detection_compares_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        st = os.fstat(a.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert stderr_is_journal(a, env)
        assert not stderr_is_journal(b, env)  # inherited variable, stderr redirected
        assert not stderr_is_journal(a, {})
        assert not stderr_is_journal(a, {"JOURNAL_STREAM": "garbage"})


def _log_through_cli(stderr_path: Path, env: dict[str, str]) -> str:
    code = (
        "import logging\n"
        "from astreinte_ari.cli.log_format import configure_logging\n"
        "configure_logging(logging.INFO)\n"
        "logging.getLogger('astreinte_ari.app.compose').error('transport deaf')\n"
        "logging.getLogger('astreinte_ari.app.compose').info('astreinte ready')\n"
    )
    with open(stderr_path, "w") as err:
        if "JOURNAL_STREAM" in env and env["JOURNAL_STREAM"] == "this":
            st = os.fstat(err.fileno())
            env = {**env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        subprocess.run([sys.executable, "-c", code], stderr=err, env=env, check=True, timeout=30)
    return stderr_path.read_text()


def test_a_process_whose_stderr_is_the_journal_writes_priorities(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    journal = _log_through_cli(tmp_path / "journal", {**env, "JOURNAL_STREAM": "this"})
    assert journal.splitlines() == [
        "<3>ERROR astreinte_ari.app.compose: transport deaf",
        "<6>INFO astreinte_ari.app.compose: astreinte ready",
    ]
    plain = _log_through_cli(tmp_path / "plain", env)
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ERROR ", plain), plain
