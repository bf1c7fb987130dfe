"""Fixtures for end-to-end tests: real Asterisk, real SIP (sipp), the real service."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from astreinte_ari.devtools.localpbx import LocalAsterisk, free_port
from tests.e2e.rig import (
    ARI_PASSWORD,
    DESK,
    P1,
    P2,
    SUP,
    E2ERig,
    ServiceProcess,
    e2e_config,
    make_speech,
    sipp_available,
    sqlite_service,
)
from tests.rig.faults import TcpProxy
from tests.rig.postgres import create_database

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def e2e_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ERig]:
    if not sipp_available():
        pytest.fail("sipp/asterisk/espeak-ng/sox missing: run scripts/install-test-deps.sh")
    work = tmp_path_factory.mktemp("e2e")
    ports = {number: free_port(socket.SOCK_DGRAM) for number in (P1, P2, SUP)}
    desks = {DESK: free_port(socket.SOCK_DGRAM)}
    pbx = LocalAsterisk(
        work / "asterisk", ari_password=ARI_PASSWORD, mobiles=ports, sip_phones=desks
    )
    pbx.start()
    rig = E2ERig(work, pbx, {**ports, **desks}, make_speech(work / "speech.ul"))
    try:
        yield rig
    finally:
        rig.cleanup()
        pbx.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def service(
    request: pytest.FixtureRequest, e2e_rig: E2ERig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    work = tmp_path_factory.mktemp(f"service-{request.param}")
    if request.param == "sqlite":
        db_url = f"sqlite:///{work / 'audit.db'}"
    else:
        db_url = create_database(
            request.getfixturevalue("postgres_url"), f"e2e_{work.name[-8:]}".replace("-", "_")
        )
    config_path = work / "astreinte.yaml"
    metrics_port = free_port()
    config_path.write_text(
        e2e_config(
            ari_url=e2e_rig.pbx.ari_url,
            db_url=db_url,
            recordings=work / "recordings",
            metrics_port=metrics_port,
            cel_file=e2e_rig.pbx.cel_file,
            sip_port=e2e_rig.pbx.sip_port,
            desk_phone=True,
        )
    )
    proc = ServiceProcess(config_path, db_url, work / "recordings", work / "service.log")
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    proc.start()
    try:
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"service exited with {code}:\n{proc.log_tail()}"


@pytest.fixture
def rig(e2e_rig: E2ERig, service: ServiceProcess) -> Iterator[E2ERig]:
    yield e2e_rig
    e2e_rig.cleanup()


@pytest.fixture
def restartable(e2e_rig: E2ERig, tmp_path: Path) -> Iterator[ServiceProcess]:
    with sqlite_service(e2e_rig, tmp_path, clean_stop=False) as proc:
        yield proc


@pytest.fixture
def proxy(e2e_rig: E2ERig) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the PBX's ARI: cut it to cut the service from ARI."""
    with TcpProxy(e2e_rig.pbx.http_port) as proxy:
        yield proxy


@pytest.fixture
def proxied(e2e_rig: E2ERig, proxy: TcpProxy, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The service reaching ARI through `proxy`."""
    with sqlite_service(e2e_rig, tmp_path, ari_url=proxy.url) as proc:
        yield proc
