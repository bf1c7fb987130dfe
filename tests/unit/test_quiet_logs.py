"""Third-party INFO lines stay out of the service's log unless -v: APScheduler alone
wrote two lines per 30-second job (about 5,800 a day), drowning the calls."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from astreinte_ari.cli.log_format import QUIET_LOGGERS, quiet_third_party


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_log() -> Iterator[_Collect]:
    root, handler = logging.getLogger(), _Collect()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def _run_one_job() -> None:
    ran = threading.Event()
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        # A periodic job run at once: a one-shot job is removed by the scheduler's
        # thread after it ran, which races with the shutdown below.
        scheduler.add_job(ran.set, "interval", hours=1, next_run_time=datetime.now(UTC))
        assert ran.wait(10), "the job did not run"
    finally:
        scheduler.shutdown(wait=True)


def test_apscheduler_job_lines_are_quiet_by_default(root_log: _Collect) -> None:
    quiet_third_party(verbose=False)
    logging.getLogger("astreinte_ari.test").info("a call line")
    _run_one_job()
    from_apscheduler = [r for r in root_log.records if r.name.startswith("apscheduler")]
    assert from_apscheduler == []
    assert [r.getMessage() for r in root_log.records] == ["a call line"]
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.WARNING)


def test_verbose_shows_them(root_log: _Collect) -> None:
    quiet_third_party(verbose=True)
    _run_one_job()
    messages = [r.getMessage() for r in root_log.records if r.name.startswith("apscheduler")]
    assert any(m.startswith("Running job") for m in messages), messages
